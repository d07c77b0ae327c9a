"""An attachment's download as an HTTP response: the API and the portal serve the same one."""

from urllib.parse import quote

from fastapi.responses import StreamingResponse

from ctcp.audit.service import AuditContext
from ctcp.core.db import Database
from ctcp.reports import attachments
from ctcp.reports.models import Attachment


def streamed(
    database: Database, attachment: Attachment, context: AuditContext
) -> StreamingResponse:
    """The exact bytes of an attachment already checked readable (checked against their
    sha256 as they stream), as a file to save, never to render."""
    quoted = quote(attachment.filename, safe="")
    return StreamingResponse(
        attachments.verified_chunks(database, attachment, context),
        media_type=attachment.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}",
            "Content-Length": str(attachment.size),
            "X-Content-Type-Options": "nosniff",
        },
    )
