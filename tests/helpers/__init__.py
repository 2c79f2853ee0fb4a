"""Helpers the test modules share: the live stack, DSB2018 segments, posterior-sample checks."""
