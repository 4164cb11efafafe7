"""mixerd's built-in adapters (installed as `mixerd_adapters`), one package each."""
