"""E-mail through SMTP with the standard library's smtplib (in a thread, bounded): 4xx replies are
temporary, 5xx for good, and a connection the server closes after the message's data, with no
reply, counts as sent."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from .channels import ChannelResult, Verdict
from .messages import mail_subject, mail_text
from .reminder import Reminder
from .settings import MailConfig

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

REF_HEADER = "X-Reminder-Ref"


class _SMTP(smtplib.SMTP):
    """Notes when the message's data, up to its final dot, has been handed to the server: from
    then on the server may have accepted it, whether or not its reply comes."""

    handed_over = False

    def send(self, s: ReadableBuffer | str) -> None:
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.handed_over = True

    def closed_on_the_data(self, exc: Exception) -> bool:
        """Whether `exc` is the server closing the connection after the data, with no reply:
        not this client giving up on a slow reply (smtplib raises that as a disconnection
        too, from the socket's timeout)."""
        return (
            self.handed_over
            and isinstance(exc, smtplib.SMTPServerDisconnected)
            and not isinstance(exc.__context__, TimeoutError)
        )


class MailChannel:
    def __init__(self, config: MailConfig) -> None:
        self._config = config
        self._timeout = config.timeout
        self._domain = config.sender.rpartition("@")[2] or "localhost"

    @property
    def name(self) -> str:
        return "email"

    def reaches(self, reminder: Reminder) -> bool:
        return reminder.email is not None

    def message(self, reminder: Reminder) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = str(reminder.email)
        message["Subject"] = mail_subject(reminder)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=self._domain)
        message[REF_HEADER] = reminder.ref
        message.set_content(mail_text(reminder), charset="utf-8")
        return message

    async def send(self, reminder: Reminder) -> ChannelResult:
        message = self.message(reminder)
        smtp = _SMTP(timeout=self._timeout)
        # Each socket operation is bounded by the timeout. No deadline over the whole exchange:
        # one that fired would leave the thread running, and a reply it then got (the message
        # taken) would be lost, so the message would go out twice.
        return await asyncio.to_thread(self._exchange, smtp, message)

    def _exchange(self, smtp: _SMTP, message: EmailMessage) -> ChannelResult:
        config = self._config
        try:
            smtp.connect(config.host, config.port)
            smtp.login(config.username, config.password)
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            smtp.close()
            ((code, reply),) = exc.recipients.values()
            return _refused(code, reply, recipient=True)
        except smtplib.SMTPResponseException as exc:
            smtp.close()
            return _refused(exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPException, OSError) as exc:
            smtp.close()
            what = f"{type(exc).__name__}: {exc}"
            if smtp.closed_on_the_data(exc):
                # SMTP's lost reply: the server had the whole message and most likely took
                # it. Sending it again would most likely be a second copy on this channel,
                # which counts against us.
                return ChannelResult(
                    Verdict.SENT,
                    message_id=str(message["Message-ID"]),
                    detail=f"{what} after the data: counted as sent",
                )
            return ChannelResult(Verdict.RETRY, detail=what)
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()  # the message is taken: a failed goodbye changes nothing
        smtp.close()
        return ChannelResult(Verdict.SENT, message_id=str(message["Message-ID"]))


def _refused(code: int, reply: bytes | str, *, recipient: bool = False) -> ChannelResult:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    detail = f"SMTP {code} {text}".strip()
    if 400 <= code < 500:  # greylisting (451), a busy server (421): later
        return ChannelResult(Verdict.RETRY, detail=detail)
    return ChannelResult(Verdict.GIVE_UP, detail=detail, recipient=recipient)
