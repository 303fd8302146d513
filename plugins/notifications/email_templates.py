"""Email templates: one small text + HTML layout, worded per notification category.

Every value put into the HTML part goes through :func:`html.escape` (titles and bodies carry
user-made text such as names and routine titles); the text part takes them verbatim.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from string import Template
from typing import Any


@dataclass(frozen=True, slots=True)
class CategoryWording:
    subject_prefix: str
    greeting: str
    footer: str


WORDING: dict[str, CategoryWording] = {
    "achievements": CategoryWording("🏆", "Congratulations, $name!", "Keep it up: every record counts."),
    "social": CategoryWording("👥", "Hi $name,", "Here is what your training partners are up to."),
    "coaching": CategoryWording("💡", "Hi $name,", "A tip from your coach."),
    "reminders": CategoryWording("⏰", "Hi $name,", "A small nudge from FitTracker."),
    "system": CategoryWording("", "Hello $name,", "This is a message about your FitTracker account."),
}
DEFAULT_WORDING = CategoryWording("", "Hi $name,", "")

TEXT = Template("""$greeting

$title

$body

--
$footer
You receive this because email is on for "$category" notifications in your FitTracker
preferences; change that in the app (Settings > Notifications).
""")

HTML = Template("""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>$title</title></head>
<body style="font-family: sans-serif; color: #222; max-width: 36em; margin: auto;">
<p>$greeting</p>
<h1 style="font-size: 1.3em;">$title</h1>
<p>$body</p>
<hr>
<p style="font-size: 0.85em; color: #666;">$footer<br>
You receive this because email is on for &quot;$category&quot; notifications in your FitTracker
preferences; change that in the app (Settings &gt; Notifications).</p>
</body>
</html>
""")


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _one_line(text: str) -> str:
    # A header value must not carry line breaks (header injection).
    return " ".join(text.split())


def render(notification: dict[str, Any], name: str) -> RenderedEmail:
    """Subject, text and HTML for one notification ``{category, title, body, ...}``."""
    category = str(notification.get("category", ""))
    wording = WORDING.get(category, DEFAULT_WORDING)
    title, body = str(notification.get("title", "")), str(notification.get("body", ""))
    name = name or "there"
    greeting = Template(wording.greeting).safe_substitute(name=name)
    text = TEXT.substitute(
        greeting=greeting, title=title, body=body, footer=wording.footer, category=category
    )
    escaped_body = "<br>\n".join(html.escape(line) for line in body.splitlines())
    markup = HTML.substitute(
        greeting=html.escape(greeting),
        title=html.escape(title),
        body=escaped_body,
        footer=html.escape(wording.footer),
        category=html.escape(category),
    )
    subject = _one_line(f"{wording.subject_prefix} {title}".strip())
    return RenderedEmail(subject=subject, text=text, html=markup)
