"""The fake client nodes: :func:`fake_node`, and how the API shows them
(``/v1/nodes``, ``/v1/node/<id>``)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from .go_text import HTTPError, parse_go_bool, rfc3339
from .state import StandinState, _now, _uuid


def fake_node(
    name: str = "standin-node-1",
    *,
    datacenter: str = "dc1",
    cpu_mhz: int = 32000,
    cores: int = 16,
    memory_mb: int = 65536,
    disk_mb: int = 200_000,
    gpus: int = 0,
    gpu_vendor: str = "nvidia",
    gpu_type: str = "gpu",
    gpu_name: str = "Tesla T4",
    devices: list[dict] | None = None,
    drivers: Iterable[str] = ("docker", "exec", "raw_exec"),
    status: str = "ready",
    eligibility: str = "eligible",
    drain: bool = False,
    node_pool: str = "default",
    node_class: str = "",
    meta: dict[str, str] | None = None,
    reserved_cpu_mhz: int = 0,
    reserved_memory_mb: int = 0,
    node_id: str | None = None,
) -> dict:
    """A fake client node for ``NomadStandin(nodes=[...])``.

    ``gpus`` adds one device group of that many healthy instances; ``devices`` gives
    NodeResources.Devices in Nomad's own shape instead.
    """
    if devices is None:
        devices = []
        if gpus:
            devices.append(
                {
                    "Vendor": gpu_vendor,
                    "Type": gpu_type,
                    "Name": gpu_name,
                    "Instances": [
                        {
                            "ID": f"GPU-{_uuid()}",
                            "Healthy": True,
                            "HealthDescription": "",
                            "Locality": None,
                        }
                        for _ in range(gpus)
                    ],
                    "Attributes": None,
                }
            )
    return {
        "ID": node_id or _uuid(),
        "Name": name,
        "Datacenter": datacenter,
        "NodePool": node_pool,
        "NodeClass": node_class,
        "Status": status,
        "SchedulingEligibility": eligibility,
        "Drain": drain,
        "Drivers": list(drivers),
        "Meta": dict(meta or {}),
        "Attributes": {
            "os.name": "linux",
            "kernel.name": "linux",
            "cpu.arch": "amd64",
            "cpu.numcores": str(cores),
            "cpu.totalcompute": str(cpu_mhz),
            "memory.totalbytes": str(memory_mb * 1024 * 1024),
            "nomad.version": "1.9.7",
            "unique.hostname": name,
        },
        "NodeResources": {
            "Cpu": {
                "CpuShares": cpu_mhz,
                "TotalCpuCores": cores,
                "ReservableCpuCores": list(range(cores)),
            },
            "Memory": {"MemoryMB": memory_mb},
            "Disk": {"DiskMB": disk_mb},
            "Networks": None,
            "Devices": devices,
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        },
        "ReservedResources": {
            "Cpu": {"CpuShares": reserved_cpu_mhz, "ReservedCpuCores": None},
            "Memory": {"MemoryMB": reserved_memory_mb},
            "Disk": {"DiskMB": 0},
            "Networks": {"ReservedHostPorts": ""},
        },
    }


class Nodes(StandinState):
    """The node methods of :class:`~.server.NomadStandin`."""

    def _node(self, ref: str) -> dict | None:
        return next((n for n in self.nodes if ref in (n["ID"], n["Name"])), None)

    def _node_out(self, n: dict, *, resources: bool, full: bool = False) -> dict:
        drivers = {
            d: {
                "Attributes": None,
                "Detected": True,
                "Healthy": True,
                "HealthDescription": "Healthy",
                "UpdateTime": rfc3339(_now()),
            }
            for d in n["Drivers"]
        }
        out = {
            "Address": "127.0.0.1",
            "ID": n["ID"],
            "Attributes": None,
            "Datacenter": n["Datacenter"],
            "Name": n["Name"],
            "NodeClass": n["NodeClass"],
            "NodePool": n["NodePool"],
            "Version": n["Attributes"].get("nomad.version", ""),
            "Drain": n["Drain"],
            "SchedulingEligibility": n["SchedulingEligibility"],
            "Status": n["Status"],
            "StatusDescription": "",
            "Drivers": drivers,
            "HostVolumes": None,
            "HostNetworks": None,
            "CSIControllerPlugins": None,
            "CSINodePlugins": None,
            "LastDrain": None,
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }
        if resources:
            out["NodeResources"] = copy.deepcopy(n["NodeResources"])
            out["ReservedResources"] = copy.deepcopy(n["ReservedResources"])
        if full:
            out["Attributes"] = dict(n["Attributes"])
            out["Meta"] = dict(n["Meta"])
        return out

    def _list_nodes(self, query: dict[str, str]) -> list[dict]:
        flags = {}
        for name in ("resources", "os"):
            value = query.get(name)
            if value:
                try:
                    flags[name] = parse_go_bool(value)
                except ValueError as e:
                    raise HTTPError(
                        500, f'Failed to parse value of "{name}" ({value}) as a bool: {e}'
                    ) from None
        prefix = query.get("prefix", "")
        with self._lock:
            out = []
            for n in self.nodes:
                if not n["ID"].startswith(prefix):
                    continue
                stub = self._node_out(n, resources=flags.get("resources", False))
                if flags.get("os"):
                    stub["Attributes"] = {"os.name": n["Attributes"].get("os.name", "")}
                out.append(stub)
            return out
