"""Config: Mixer's YAML resources read from a folder, validated whole and compiled into a Snapshot."""

from .errors import ConfigError, ConfigRejected
from .files import ReadLimits
from .loader import Document, fingerprint, read_documents
from .manifests import load_manifest
from .snapshot import DEFAULT_NAMESPACE, Snapshot, compile_snapshot, load_snapshot

__all__ = [
    "DEFAULT_NAMESPACE",
    "ConfigError",
    "ConfigRejected",
    "Document",
    "ReadLimits",
    "Snapshot",
    "compile_snapshot",
    "fingerprint",
    "load_manifest",
    "load_snapshot",
    "read_documents",
]
