"""Replay a day of ride requests through the live dispatcher in accelerated time."""
