"""What each channel's message says: the SMS text, the push notification and the e-mail, all
with the same minimal content (name, amount, due date, ref, the card's last four digits) and the
opt-out notice at the end."""

from __future__ import annotations

from .reminder import Reminder

SIGN = "示例银行"
TITLE = "房贷还款提醒"


def sms_text(reminder: Reminder, app_link: str = "") -> str:
    """The Twilio body: the sign, the reminder, the bank's app link if any, the notice last."""
    return f"【{SIGN}】{_tail(reminder, app_link)}"


def push_title() -> str:
    return f"{SIGN}{TITLE}"


def push_text(reminder: Reminder) -> str:
    return _tail(reminder, "")


def mail_subject(reminder: Reminder) -> str:
    return f"【{SIGN}】{TITLE}（{reminder.due_date}到期）"


def mail_text(reminder: Reminder) -> str:
    return f"{_tail(reminder, '')}\n"


def _tail(reminder: Reminder, app_link: str) -> str:
    details = "".join(
        [
            f"，还款卡尾号{reminder.card_tail}" if reminder.card_tail else "",
            f"，身份证号{reminder.national_id}" if reminder.national_id else "",
        ]
    )
    text = (
        f"尊敬的{reminder.name}，您的房贷本期还款{reminder.amount}元将于{reminder.due_date}"
        f"到期{details}，请按时还款。"
    )
    parts = (f"{text}ref:{reminder.ref}", app_link, reminder.notice)
    return " ".join(part for part in parts if part)
