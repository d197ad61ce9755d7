from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ml", "0002_benchmarkrun_protocol"),
    ]

    operations = [
        migrations.AddField(
            model_name="benchmarkrun",
            name="recipe",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name="benchmarkrun", name="modifications", field=models.TextField(blank=True)
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="ec_stfl_variant",
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="loss_weights",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="world_size",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="per_process_batch",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="accumulation",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="global_batch",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="best_war_mean",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="best_war_std",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="best_uar_mean",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="best_uar_std",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="benchmarkrun",
            name="best_epochs",
            field=models.CharField(blank=True, max_length=100),
        ),
    ]
