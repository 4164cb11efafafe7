"""kubernetes (ATTRIBUTE_GENERATOR): pod identities in, workload attributes out (kubernetesenv).

The handler's `handle_kubernetes(instance)` returns a mapping of output field -> value; rules bind those
outputs to attributes with `attributeBindings` (`source.labels: $out.source_labels | emptyStringMap()`),
and the results are merged under the request's own attributes (MIXER.md 6.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..attribute.values import ValueType
from ._base import Field, Template, Variety

_S, _I, _IP, _M = ValueType.STRING, ValueType.INT64, ValueType.IP_ADDRESS, ValueType.STRING_MAP


@dataclass(slots=True)
class KubernetesInstance:
    name: str = ""
    source_uid: str = ""
    source_ip: bytes = b""
    destination_uid: str = ""
    destination_ip: bytes = b""
    destination_port: int = 0


def _peer(side: str, extra: tuple[Field, ...] = ()) -> tuple[Field, ...]:
    return (
        Field(f"{side}_pod_uid"),
        Field(f"{side}_pod_ip", _IP),
        Field(f"{side}_pod_name"),
        *extra,
        Field(f"{side}_labels", _M),
        Field(f"{side}_namespace"),
        Field(f"{side}_service_account_name"),
        Field(f"{side}_host_ip", _IP),
        Field(f"{side}_workload_uid"),
        Field(f"{side}_workload_name"),
        Field(f"{side}_workload_namespace"),
        Field(f"{side}_owner"),
    )


TEMPLATE = Template(
    name="kubernetes",
    variety=Variety.ATTRIBUTE_GENERATOR,
    fields=(
        Field("source_uid"),
        Field("source_ip", _IP),
        Field("destination_uid"),
        Field("destination_ip", _IP),
        Field("destination_port", _I),
    ),
    instance=KubernetesInstance,
    output=_peer("source") + _peer("destination", (Field("destination_container_name"),)),
    package="adapter.template.kubernetes",
    description="Looks up the pods behind a request and produces their workload attributes.",
)
