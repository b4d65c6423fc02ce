"""A small MinKNOW run folder, made with the `pod5` package's writer: real pod5
files holding synthetic signal, in the layout MinKNOW writes
(`<protocol group>/<sample>/<start>_<device>_<flow cell>_<short run id>/pod5/`),
with the files a finished run has (`final_summary_*.txt`, `report_*.json`).

The demo shows a Nanopore run found and batched with it; the tests make runs
with it too, as they grow (`add_pod5`), are half-written (`write_partial_pod5`)
and finish (`finish_run`).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pod5

SAMPLE_RATE = 5000
KIT = "SQK-LSK114"
FLOW_CELL_PRODUCT = "FLO-MIN114"
PROTOCOL = f"sequencing/sequencing_MIN114_DNA_e8_2_400K:{FLOW_CELL_PRODUCT}:{KIT}"


@dataclass
class NanoporeRun:
    """A run folder being written, and what the demo knows about it."""

    folder: Path
    protocol_run_id: str
    acquisition_id: str
    flowcell: str
    device: str
    sample: str
    group: str
    started: datetime
    seed: int = 0
    pod5_files: list[Path] = field(default_factory=list)
    read_ids: dict[str, list[str]] = field(default_factory=dict)  # file name → its reads

    @property
    def short_id(self) -> str:
        return self.protocol_run_id[:8]

    @property
    def pod5_folder(self) -> Path:
        return self.folder / "pod5"

    def pod5_name(self, index: int) -> str:
        return f"{self.flowcell}_{self.short_id}_{self.acquisition_id[:8]}_{index}.pod5"

    def run_info(self) -> pod5.RunInfo:
        return pod5.RunInfo(
            acquisition_id=self.acquisition_id,
            acquisition_start_time=self.started,
            adc_max=4095,
            adc_min=-4096,
            context_tags={"sample_frequency": str(SAMPLE_RATE), "experiment_type": "genomic_dna"},
            experiment_name=self.group,
            flow_cell_id=self.flowcell,
            flow_cell_product_code=FLOW_CELL_PRODUCT,
            protocol_name=PROTOCOL.split(":")[0],
            protocol_run_id=self.protocol_run_id,
            protocol_start_time=self.started,
            sample_id=self.sample,
            sample_rate=SAMPLE_RATE,
            sequencing_kit=KIT.lower(),
            sequencer_position=self.device,
            sequencer_position_type="MinION Mk1B",
            software="MinKNOW 24.02.6 (demo)",
            system_name="demo-host",
            system_type="minion",
            tracking_id={"run_id": self.acquisition_id},
        )


def new_run(
    root: Path,
    *,
    group: str = "demo_group",
    sample: str = "demo_sample",
    flowcell: str = "FAX00001",
    device: str = "MN00001",
    seed: int = 1,
    started: datetime | None = None,
) -> NanoporeRun:
    """An empty run folder under `root`, as MinKNOW makes one when a run starts."""
    rng = random.Random(seed)
    started = started or datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    protocol_run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    acquisition_id = f"{rng.getrandbits(160):040x}"
    name = f"{started:%Y%m%d_%H%M}_{device}_{flowcell}_{protocol_run_id[:8]}"
    run = NanoporeRun(
        folder=Path(root) / group / sample / name,
        protocol_run_id=protocol_run_id,
        acquisition_id=acquisition_id,
        flowcell=flowcell,
        device=device,
        sample=sample,
        group=group,
        started=started,
        seed=seed,
    )
    run.pod5_folder.mkdir(parents=True, exist_ok=True)
    return run


def synthetic_reads(run: NanoporeRun, index: int, reads: int, samples: int) -> list[pod5.Read]:
    """`reads` reads of `samples` samples of made-up signal each, from the run."""
    rng = random.Random(run.seed * 1_000_003 + index)
    numbers = np.random.default_rng(run.seed * 7919 + index)
    info = run.run_info()
    made = []
    for n in range(reads):
        signal = numbers.normal(450, 60, samples).clip(-4096, 4095).astype(np.int16)
        made.append(
            pod5.Read(
                read_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                pore=pod5.Pore(channel=1 + rng.randrange(512), well=1, pore_type="not_set"),
                calibration=pod5.Calibration(offset=-240.0, scale=0.18),
                read_number=index * 1000 + n,
                start_sample=(index * 1000 + n) * samples,
                median_before=200.0,
                end_reason=pod5.EndReason.from_reason_with_default_forced(
                    pod5.EndReasonEnum.SIGNAL_POSITIVE
                ),
                run_info=info,
                signal=signal,
            )
        )
    return made


def write_pod5(path: Path, reads: list[pod5.Read]) -> None:
    """Write a whole pod5 file (the writer refuses to overwrite one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pod5.Writer(path) as writer:
        writer.add_reads(reads)


def add_pod5(run: NanoporeRun, reads: int = 4, samples: int = 2000) -> Path:
    """The run's next complete pod5 file."""
    index = len(run.pod5_files)
    path = run.pod5_folder / run.pod5_name(index)
    made = synthetic_reads(run, index, reads, samples)
    write_pod5(path, made)
    run.pod5_files.append(path)
    run.read_ids[path.name] = [str(r.read_id) for r in made]
    return path


def write_partial_pod5(run: NanoporeRun, fraction: float = 0.6) -> Path:
    """The run's next pod5 file as MinKNOW leaves it while still writing it: the
    first part of a whole file, without the end signature. It is not one of the
    run's files until `complete_partial_pod5`."""
    index = len(run.pod5_files)
    path = run.pod5_folder / run.pod5_name(index)
    whole = path.with_name(f".{path.name}.whole")  # hidden: surveys ignore it
    made = synthetic_reads(run, index, 4, 2000)
    write_pod5(whole, made)
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def complete_partial_pod5(run: NanoporeRun, path: Path) -> Path:
    """Finish a file `write_partial_pod5` started: it becomes the whole file."""
    whole = path.with_name(f".{path.name}.whole")  # hidden: surveys ignore it
    path.write_bytes(whole.read_bytes())
    whole.unlink()
    index = len(run.pod5_files)
    run.pod5_files.append(path)
    run.read_ids[path.name] = [str(r.read_id) for r in synthetic_reads(run, index, 4, 2000)]
    return path


def finish_run(run: NanoporeRun, *, report: bool = True) -> Path:
    """The files MinKNOW writes when a run ends: `report_*.json` and, last,
    `final_summary_*.txt`. Returns the final summary's path."""
    stopped = run.started + timedelta(hours=1)
    if report:
        document = {
            "software": {"name": "MinKNOW", "version": "24.02.6"},
            "protocol_run_info": {
                "run_id": run.protocol_run_id,
                "protocol_id": PROTOCOL,
                "start_time": run.started.isoformat(),
                "end_time": stopped.isoformat(),
                "device": {"device_id": run.device, "device_type": "MINION"},
                "flow_cell": {"flow_cell_id": run.flowcell, "product_code": FLOW_CELL_PRODUCT},
                "user_info": {"protocol_group_id": run.group, "sample_id": run.sample},
                "meta_info": {"tags": {"kit": {"string_value": KIT}}},
            },
        }
        name = f"report_{run.flowcell}_{run.started:%Y%m%d_%H%M}_{run.short_id}.json"
        (run.folder / name).write_text(json.dumps(document, indent=2))
    lines = {
        "instrument": run.device,
        "position": "",
        "flow_cell_id": run.flowcell,
        "sample_id": run.sample,
        "protocol_group_id": run.group,
        "protocol": PROTOCOL,
        "protocol_run_id": run.protocol_run_id,
        "acquisition_run_id": run.acquisition_id,
        "started": run.started.isoformat(),
        "acquisition_stopped": stopped.isoformat(),
        "processing_stopped": stopped.isoformat(),
        "basecalling_enabled": "0",
        "sequencing_summary_file": "",
        "pod5_files_in_final_dest": str(len(run.pod5_files)),
        "pod5_files_in_fallback": "0",
        "fastq_files_in_final_dest": "0",
        "bam_files_in_final_dest": "0",
    }
    name = f"final_summary_{run.flowcell}_{run.short_id}_{run.acquisition_id[:8]}.txt"
    summary = run.folder / name
    temporary = summary.with_name(f".{name}.tmp")
    temporary.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
    temporary.rename(summary)
    return summary


def make_nanopore_run(
    root: Path, files: int = 3, reads: int = 4, complete: bool = True, **names
) -> NanoporeRun:
    """A whole small run: `files` pod5 files of `reads` reads, finished unless
    `complete` is false. What the demo calls."""
    run = new_run(root, **names)
    for _ in range(files):
        add_pod5(run, reads=reads)
    if complete:
        finish_run(run)
    return run
