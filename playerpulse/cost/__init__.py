"""``playerpulse cost``: the monthly AWS bill from a dated price table and measured inputs."""
