import json
import logging

from rrr_live.logs import JsonFormatter


def test_json_formatter_emits_one_object_with_extra_fields() -> None:
    record = logging.LogRecord("rrr.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.symbol = "SP500"
    payload = json.loads(JsonFormatter().format(record))
    assert payload["msg"] == "hello world"
    assert payload["level"] == "WARNING"
    assert payload["logger"] == "rrr.x"
    assert payload["symbol"] == "SP500"
    assert payload["ts"].endswith("+00:00")
