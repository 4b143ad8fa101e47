"""Test helpers shipped with hf_spider: a Hub served on 127.0.0.1 and generated model repos with known records."""

from __future__ import annotations

from .loopback_hub import DEFAULT_TOKEN, DEFAULT_USER, FAULT_KINDS, FaultPlan, FaultRule, LoopbackHub, RequestRecord

__all__ = ["DEFAULT_TOKEN", "DEFAULT_USER", "FAULT_KINDS", "FaultPlan", "FaultRule", "LoopbackHub", "RequestRecord"]
