"""Basecalling engines: GPU servers outside the cluster that pull basecalling
work (BCManager's model) through the API.

    POST /api/engines/<engine>/assign                 claim queued basecalling jobs
    POST /api/engines/<engine>/jobs/<id>/keepalive    the job's heartbeat
    POST /api/engines/<engine>/jobs/<id>/completed    outputs (multipart) or a failure
    GET  /api/engines/heartbeat                       the service is alive
    GET  /api/engines/                                engines, last contact, their jobs

There is one bookkeeping: an engine claims ProcessorJobs with the workers'
claim and runs them as their worker (runner/engines.py); a keepalive is the
job's heartbeat (as `Job.beat_running` writes it, and only for the engine's own
job); the Foreman takes back a job whose keepalives stop. Each engine
authenticates with its own token (`manage.py engines add NAME`) and may touch
only its own jobs. A completion is checked (every read id accounted for) and
recorded by the processor's own steps (processors/basecalling/engine.py).
"""

from api.engines.views import assign, completed, engine_list, heartbeat, keepalive

__all__ = ["assign", "completed", "engine_list", "heartbeat", "keepalive"]
