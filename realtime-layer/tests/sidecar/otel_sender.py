"""A Python service's lease events through the OpenTelemetry SDK and its OTLP/HTTP exporter.

Used by tests/sidecar_otel.rs: python otel_sender.py URL TOKEN NOW_MS
Sends, on "GPU A100": two borrows with their returns held 3 s and 5 s, a failure; on "CPU pool"
a borrow left open, through the standard logging module (attributes from `extra`); and one
record that is not a lease event. Times are the sender's (NOW_MS minus a few seconds).
"""

import logging
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

url, token, now_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])

provider = LoggerProvider()
exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", headers={"Authorization": f"Bearer {token}"})
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
leases = provider.get_logger("leases")


def lease(name, ms_ago, **attributes):
    leases.emit(
        timestamp=(now_ms - ms_ago) * 1_000_000,
        event_name=name,
        body=name,
        attributes={f"lease.{k}": v for k, v in attributes.items()},
    )


lease("lease.borrow", 10_000, resource="GPU A100", user="ann", id="b-1")
lease("lease.return", 7_000, resource="GPU A100", user="ann", id="b-1")
lease("lease.borrow", 6_000, resource="GPU A100", user="bob", id="b-2", overage=True)
lease("lease.failure", 5_000, resource="GPU A100", user="cy", reason="exhausted")
lease("lease.return", 1_000, resource="GPU A100", user="bob", id="b-2")
leases.emit(event_name="app.started", body="not a lease event")

# The standard logging module works too: the attributes come from `extra`.
log = logging.getLogger("billing")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
log.info(
    "borrowed",
    extra={"event.name": "lease.borrow", "lease.resource": "CPU pool", "lease.user": "dee", "lease.id": 7},
)

provider.shutdown()  # flushes the batch
