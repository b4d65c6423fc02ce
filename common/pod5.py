"""The pod5 format's own facts, shared by the survey (is a file complete?), the
downloader (is it whole?) and the demo's writer: a pod5 file starts and ends
with this signature."""

POD5_SIGNATURE = b"\x8bPOD\r\n\x1a\n"
