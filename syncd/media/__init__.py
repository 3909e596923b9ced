"""Local media with PyAV: probing a video, making test clips."""
