"""eSIM onboarding (GSMA SGP.22 consumer remote SIM provisioning)."""

from ztsim.esim.activation import ActivationCode, InvalidActivationCode

__all__ = ["ActivationCode", "InvalidActivationCode"]
