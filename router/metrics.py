"""Prometheus metrics: aggregate counts and latencies only. No label ever holds a number or text.

Labels are endpoint names, service ids from the flow files, outcomes and error kinds: small fixed
sets. The workers' counters live in Redis (router/store/counters.py) and are shown here too.

Even aggregate counts say something: someone polling helpline_events_total{label="karma_nirvana"} sees
it move when the person they watch calls. So /metrics answers only a scraper that sends
`Authorization: Bearer $METRICS_TOKEN` (Prometheus' `authorization` scrape setting), and nobody at all
when no token is configured.
"""
from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path

import redis
from prometheus_client import multiprocess
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOK_SECONDS = Histogram(
    "helpline_webhook_seconds", "Time to answer a webhook", ["endpoint"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
EVENTS = Counter("helpline_events", "Menu choices, closed-hours fallbacks, follow-ups asked for ...",
                 ["channel", "event", "label"], registry=REGISTRY)
ERRORS = Counter("helpline_errors", "Errors answered with the safety TwiML or degraded service",
                 ["kind"], registry=REGISTRY)
MESSAGE_STATUS = Counter("helpline_message_status", "Status callbacks received", ["status"],
                         registry=REGISTRY)
KNOWN_STATUSES = frozenset({"queued", "sending", "sent", "delivered", "undelivered", "failed",
                            "received", "read", "canceled", "accepted", "scheduled", "partially_delivered"})
MESSAGE_ERRORS = Counter("helpline_message_errors", "Messages (replies included) Twilio reported failed, by "
                         "error code: 21610 opted out at Twilio, 30036 expired in Twilio's queue, ...",
                         ["code"], registry=REGISTRY)
KNOWN_ERROR_CODES = frozenset({"21610", "30001", "30003", "30004", "30005", "30006", "30007", "30008", "30036"})


def count_step(channel: str, step) -> None:
    for event, label in step.events:
        EVENTS.labels(channel, event, label).inc()


def count_message_status(status: str, error_code: str | None = None) -> None:
    """A status callback (of a follow-up or of a TwiML reply). A reply Twilio refused because the phone
    opted out at Twilio (21610: https://www.twilio.com/docs/api/errors/21610) is counted and logged,
    without the number, so a helpline whose replies stop reaching people learns of it."""
    MESSAGE_STATUS.labels(status if status in KNOWN_STATUSES else "other").inc()
    if error_code:
        MESSAGE_ERRORS.labels(error_code if error_code in KNOWN_ERROR_CODES else "other").inc()
        if error_code == "21610":
            logging.getLogger("router.web.sms").warning(
                "a message was refused: the phone has opted out at Twilio (error 21610)")


class WorkerStats:
    """Shows the workers' Redis counters (follow-ups by outcome, deletions, deletion lag)."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def collect(self):
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall("hr:stats")
            pipe.get("hr:heartbeat")                            # tasks/health.py
            pipe.zcount("hr:fu-due", "-inf", time.time())        # router/store/pending.py: due, not yet taken
            pipe.zcount("hr:del-due", "-inf", time.time())       # router/store/deletions.py
            pipe.llen("celery")                                  # Celery's default queue
            stats, heartbeat, followups_due, deletions_due, queued = pipe.execute()
        except (redis.RedisError, OSError):
            return
        yield from _gauges(heartbeat, followups_due, deletions_due, queued)
        families: dict[str, CounterMetricFamily] = {}
        buckets: list[tuple[str, float]] = []
        for field, value in stats.items():
            name, _, label = field.partition("|")
            if name == "deletion_lag_bucket":
                buckets.append((label, float(value)))
                continue
            if name == "deletion_lag_sum":
                continue
            family = families.setdefault(name, CounterMetricFamily(
                f"helpline_worker_{name}", f"Worker counter {name}", labels=["kind"]))
            family.add_metric([label], float(value))
        yield from families.values()
        if buckets:
            ordered = sorted(buckets, key=lambda b: float("inf") if b[0] == "+Inf" else float(b[0]))
            lag = HistogramMetricFamily("helpline_deletion_lag_seconds",
                                        "From a message's final status to its deletion at Twilio")
            lag.add_metric([], [(le, count) for le, count in ordered],
                           sum_value=float(stats.get("deletion_lag_sum|", 0)))
            yield lag


def authorised(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries the configured bearer token (compared as bytes, so a
    header that is not ASCII is simply wrong). No token configured: nobody is."""
    if not token or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8"))


def _gauges(heartbeat, followups_due, deletions_due, queued):
    """Backlogs and the workers' heartbeat, read from Redis at scrape time (the same on every web
    instance: use max across instances). deploy/alerts.yml alerts on them."""
    for name, doc, value in (
            ("helpline_followups_due", "Follow-ups due and not yet taken by a worker", followups_due),
            ("helpline_deletions_due", "Deletions at Twilio due and not yet taken by a worker", deletions_due),
            ("helpline_celery_queue_length", "Tasks waiting in Celery's queue for a worker", queued)):
        yield GaugeMetricFamily(name, doc, value=float(value or 0))
    if heartbeat:
        yield GaugeMetricFamily("helpline_worker_heartbeat_timestamp_seconds",
                                "When a worker last ran beat's heartbeat task (Unix time)", value=float(heartbeat))


class EmergencyLines:
    """`helpline_emergency_lines_down`: how many of the 24-hour lines silent callers reach are diverted or
    closed as this worker serves them now (0 normally). deploy/alerts.yml pages on it."""

    def __init__(self, down: int):
        self.down = down

    def collect(self):
        yield GaugeMetricFamily("helpline_emergency_lines_down", "24-hour lines that silent callers reach "
                                "which are diverted or closed now (router divert, or a change)", value=float(self.down))


def exposition(client: redis.Redis | None, emergency_lines_down: int | None = None,
               multiproc_dir: Path | None = None) -> bytes:
    """This process's metrics (or, under gunicorn with PROMETHEUS_MULTIPROC_DIR, all workers': the folder
    is Settings.prometheus_multiproc_dir)."""
    extra = CollectorRegistry()
    if client is not None:
        extra.register(WorkerStats(client))
    if emergency_lines_down is not None:
        extra.register(EmergencyLines(emergency_lines_down))
    if multiproc_dir is not None:
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=str(multiproc_dir))
        return generate_latest(combined) + generate_latest(extra)
    return generate_latest(REGISTRY) + generate_latest(extra)
