"""Send a built email over SMTP (I/O): STARTTLS or implicit TLS, auth, bounded retries."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from digestbot.config import EmailConfig
from digestbot.errors import DeliveryError

DEFAULT_DELAYS = (2.0, 10.0)


def send_email_message(msg: EmailMessage, config: EmailConfig, *, label: str,
                       delays: Sequence[float] = DEFAULT_DELAYS,
                       sleep: Callable[[float], None] = time.sleep) -> str:
    """Send the message, retrying transient failures after each of `delays`; returns a detail
    naming refused recipients (empty when all accepted). Raises DeliveryError."""
    for attempt in range(len(delays) + 1):
        try:
            refused = send_once(msg, config, label=label)
        except DeliveryError as err:
            if err.permanent or attempt == len(delays):
                raise
            sleep(delays[attempt])
            continue
        return "; ".join(f"refused {addr} ({code} {_text(reply)})"
                         for addr, (code, reply) in sorted(refused.items()))
    raise DeliveryError(label, "smtp: no attempt made")  # unreachable: the loop always runs


def _text(reply: bytes | str) -> str:
    raw = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(raw.split())


def recipients_of(msg: EmailMessage) -> list[str]:
    """Return the bare addresses of the To/Cc headers."""
    fields = [str(v) for name in ("To", "Cc") for v in (msg.get_all(name) or [])]
    return [addr for _, addr in getaddresses(fields) if addr]


def send_once(msg: EmailMessage, config: EmailConfig, *,
              label: str) -> dict[str, tuple[int, bytes]]:
    """Make one SMTP session and send; returns refused recipients. Raises DeliveryError."""
    context = ssl.create_default_context()
    sender = parseaddr(config.sender)[1] or config.sender
    to = recipients_of(msg)
    try:
        smtp = (smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                 context=context) if config.tls
                else smtplib.SMTP(config.host, config.port, timeout=config.timeout))
        with smtp:
            smtp.ehlo()
            if config.starttls and not config.tls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(label, "smtp: server does not offer STARTTLS "
                                        "(set starttls: false only on a trusted network)",
                                        permanent=True)
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
            return smtp.send_message(msg, from_addr=sender, to_addrs=to)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = ", ".join(f"{addr} ({code} {_text(reply)})"
                           for addr, (code, reply) in sorted(exc.recipients.items()))
        raise DeliveryError(label, f"smtp: all recipients refused: {detail}",
                            permanent=all(c >= 500 for c in codes)) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(label, f"smtp: authentication failed ({exc.smtp_code})",
                            permanent=True) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(label, f"smtp: {exc.smtp_code} {_text(exc.smtp_error)}",
                            permanent=exc.smtp_code >= 500) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(label, f"smtp: {exc}", permanent=True) from exc
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(label, f"smtp: TLS certificate rejected ({exc.verify_message})",
                            permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        # Refused or reset connections, timeouts and disconnects can succeed later.
        raise DeliveryError(label, f"smtp: {type(exc).__name__}: {exc}",
                            permanent=False) from exc
