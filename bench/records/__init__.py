"""What a run leaves behind: the versioned record schema and its migrations, the journal of worker messages, and
the step from messages to a record."""
