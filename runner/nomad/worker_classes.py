"""The worker classes of the refinery's parameterized Nomad jobs: one per job kind,
and `processor_gpu` when some pipeline needs a GPU, each in RAM tiers; which
parameterized job (`REFINERY_<CLASS>_<RAM>`) a job is dispatched to."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.models import Job
from common.models.choices import JobKind, ProcessorPipeline
from runner.dispatch.base import DispatchError
from runner.engines import engine_pipelines

PARENT_PREFIX = "REFINERY_"


@dataclass(frozen=True)
class WorkerClass:
    """One family of parameterized jobs: a job kind, with or without a GPU."""

    name: str  # "processor", "processor_gpu"
    kind: str  # the JobKind its jobs are
    image: str  # "transcriptome": refinery-transcriptome
    cpu_mhz: int
    ram_tiers_mb: tuple[int, ...]
    gpu: bool = False

    def parent_id(self, ram_mb: int) -> str:
        return f"{PARENT_PREFIX}{self.name.upper()}_{ram_mb}"

    def tier_for(self, ram_mb: int) -> int:
        """The smallest tier that holds `ram_mb`."""
        for tier in self.ram_tiers_mb:
            if tier >= ram_mb:
                return tier
        raise DispatchError(
            f"no Nomad RAM tier of {self.name} jobs holds {ram_mb} MB (the largest is "
            f"{self.ram_tiers_mb[-1]} MB): add one to REFINERY_NOMAD_RAM_TIERS_MB and run "
            "`manage.py nomad register`"
        )

    def parent_ids(self) -> list[str]:
        return [self.parent_id(ram) for ram in self.ram_tiers_mb]


def gpu_pipelines() -> frozenset[str]:
    """The pipelines Nomad sends to the GPU tier: REFINERY_NOMAD_GPU_PIPELINES but
    those kept for engines outside the cluster (REFINERY_ENGINE_PIPELINES)."""
    pipelines = frozenset(settings.REFINERY_NOMAD_GPU_PIPELINES)
    unknown = sorted(pipelines - set(ProcessorPipeline.values))
    if unknown:
        raise ImproperlyConfigured(
            f"REFINERY_NOMAD_GPU_PIPELINES names unknown pipelines {unknown}: "
            f"use some of {', '.join(ProcessorPipeline.values)}"
        )
    return pipelines - engine_pipelines()


def _ram_tiers(kind: str) -> tuple[int, ...]:
    tiers = settings.REFINERY_NOMAD_RAM_TIERS_MB.get(kind)
    if not tiers or not all(isinstance(t, int) and t >= 10 for t in tiers):
        raise ImproperlyConfigured(
            f"REFINERY_NOMAD_RAM_TIERS_MB[{kind!r}] must be a list of whole numbers of MB "
            f"(at least 10), not {tiers!r}"
        )
    return tuple(sorted(set(tiers)))


def worker_classes() -> list[WorkerClass]:
    """Every worker class, in the order of JobKind; PROCESSOR_GPU only when some
    pipeline needs a GPU."""
    classes = []
    for kind in JobKind.values:
        base = WorkerClass(
            name=kind,
            kind=kind,
            image=settings.REFINERY_NOMAD_IMAGES[kind],
            cpu_mhz=settings.REFINERY_NOMAD_CPU_MHZ[kind],
            ram_tiers_mb=_ram_tiers(kind),
        )
        classes.append(base)
        if kind == JobKind.PROCESSOR and gpu_pipelines():
            classes.append(
                WorkerClass(
                    name=f"{kind}_gpu",
                    kind=kind,
                    image=base.image,
                    cpu_mhz=base.cpu_mhz,
                    ram_tiers_mb=base.ram_tiers_mb,
                    gpu=True,
                )
            )
    return classes


def worker_class_for(job: Job) -> WorkerClass:
    gpu = job.kind == JobKind.PROCESSOR and getattr(job, "pipeline", "") in gpu_pipelines()
    return next(c for c in worker_classes() if c.kind == job.kind and c.gpu == gpu)


def parent_for(job: Job) -> str:
    """The parameterized job that runs `job`: its class, at the smallest RAM tier
    that holds the job's ram_mb."""
    worker = worker_class_for(job)
    return worker.parent_id(worker.tier_for(job.ram_mb))


def all_parent_ids() -> list[str]:
    return [parent for worker in worker_classes() for parent in worker.parent_ids()]
