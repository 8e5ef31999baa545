def build_metadata(task, start, end, status):
    return {"task": task.id, "start": start.isoformat(), "end": end.isoformat(), "status": status}
