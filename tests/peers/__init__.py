"""Real peers the tests start (Redis, Prometheus, statsd, Fluentd, an OTLP receiver, Envoy), and what
real tools leave behind (a kubelet's ConfigMap volume, pip's wheel): `from peers import
receivers`. tests/conftest.py puts the tests folder on sys.path so this package imports by name."""
