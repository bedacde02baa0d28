"""CLI and local stack for tutor-session-tracker."""
