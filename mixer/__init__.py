"""mixerd: a Mixer-style telemetry and policy engine speaking istio.mixer.v1 over gRPC."""

__version__ = "0.1.0"
