"""Time units shared by every package: nanoseconds per day, days per month."""

from __future__ import annotations

NS_PER_DAY = 86_400_000_000_000
"""Nanoseconds in a calendar day: timestamps are int64 nanoseconds (pandas' and Arrow's unit)."""
DAYS_PER_MONTH = 365.25 / 12
"""Average month length in days (a Julian year over twelve), the month of the CLV's discounting."""
