"""Jobs stored before automatic growth ran the paper's fixed schedule and exported its last stage.

Their configurations are completed with what they meant (``grow: fixed``, ``keep: final``), so a
resumed old job still trains and exports what its owner asked for, now that the defaults changed.
"""

# ruff: noqa: RUF012
from django.db import migrations

OLD_MEANING = {"grow": "fixed", "keep": "final", "min_gain": 0.01}


def complete_old_schedules(apps, schema_editor):
    TrainingJob = apps.get_model("training", "TrainingJob")
    for job in TrainingJob.objects.all().only("id", "config"):
        schedule = job.config.get("schedule") or {}
        if "grow" in schedule:
            continue
        job.config["schedule"] = {**OLD_MEANING, **schedule}
        job.save(update_fields=["config"])


class Migration(migrations.Migration):
    dependencies = [("training", "0002_points_and_base_version")]

    operations = [migrations.RunPython(complete_old_schedules, migrations.RunPython.noop)]
