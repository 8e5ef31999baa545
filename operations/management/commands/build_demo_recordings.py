from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from operations.demo import DEMO_MODEL_VERSIONS, DEMO_TASKS, demo_answer, demo_request
from tasks.providers import GenerationResult
from tasks.providers.replay import recording_line


class Command(BaseCommand):
    help = "Write demo/recordings/demo.jsonl from the authored answers in demo/answers/."

    def handle(self, *args: object, **options: object) -> None:
        lines = []
        for task in DEMO_TASKS:
            for model_key in DEMO_MODEL_VERSIONS:
                request = demo_request(model_key, task["prompt"])
                output = demo_answer(task, model_key)
                result = GenerationResult(
                    output=output,
                    provider_request_id=f"demo-{task['answers']}-{model_key}",
                    usage={
                        "input_tokens": len(task["prompt"].split()),
                        "output_tokens": len(output.split()),
                    },
                    response_meta={"model": request.model, "finish_reason": "stop"},
                    latency_ms=0.0,
                )
                lines.append(recording_line(request, result))
        path = Path(settings.BASE_DIR) / "demo" / "recordings" / "demo.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines))
        self.stdout.write(f"Wrote {len(lines)} recordings to {path.relative_to(settings.BASE_DIR)}")
