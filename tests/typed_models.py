"""Pydantic models the typed-answer tests share (importable, so instances pickle)."""

from __future__ import annotations

import datetime
import enum

from pydantic import BaseModel


class Status(str, enum.Enum):
    paid = "paid"
    open = "open"
    void = "void"


class Customer(BaseModel):
    name: str
    email: str | None = None


class Line(BaseModel):
    item: str
    quantity: int
    price: float


class Invoice(BaseModel):
    number: str
    status: Status
    customer: Customer
    lines: list[Line]
    issued: datetime.date
