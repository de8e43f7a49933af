from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        # Every process that publishes or runs tasks keeps the backlogs (ops.telemetry).
        # TRICKY: telemetry imports ops.tasking, which reads tenants' models: only once ready.
        from ops import telemetry

        telemetry.connect()
