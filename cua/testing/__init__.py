"""Helpers for testing computer-use flows offline: the stand-in Responses server and friends."""
