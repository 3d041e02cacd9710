"""Live order routing: the broker protocol, the Binance-compatible broker, its order store."""
