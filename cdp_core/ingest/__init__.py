"""The ingest log: messages pushed to ``cdp serve`` (HTTP API calls, vendor webhooks), stored before any graph reads them.

- :func:`append` stores :class:`IngestEntry` s, durable when it returns, a repeated
  ``(source, message_id)`` dropped (log.py);
- :class:`GroupCommitter` shares one transaction among the concurrent requests of a process (committer.py);
- :class:`IngestLogStream` reads one source's entries by cursor as a source stream (reader.py).
"""

from cdp_core.ingest.committer import GroupCommitter
from cdp_core.ingest.log import AppendResult, IngestEntry, append
from cdp_core.ingest.reader import IngestLogStream

__all__ = ["AppendResult", "GroupCommitter", "IngestEntry", "IngestLogStream", "append"]
