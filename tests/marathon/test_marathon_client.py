"""The `marathon` client from PyPI, unmodified, against Strata's launcher: create an app running a
small HTTP server with an HTTP health check, list, scale to 3, get its tasks and reach each one
on its port, update it (a rolling deployment), roll it back, restart it, delete it."""

import collections
import collections.abc
import json
import time
import urllib.request

# marathon 0.13.0 still names the abstract collections where Python 3.10 removed them.
collections.Iterable = collections.abc.Iterable
collections.Mapping = collections.abc.Mapping

from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp, MarathonHealthCheck  # noqa: E402

APP = "/demo/web"


def master_tasks(launcher):
    with urllib.request.urlopen(launcher["master"] + "/api/v1/tasks", timeout=10) as response:
        return [(task["attempt"]["taskId"], task["attempt"]["state"], task["attempt"].get("message")) for task in json.load(response)]


def wait_until(client, healthy, version=None, timeout=90, launcher=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        app = client.get_app(APP, embed_tasks=True)
        tasks = app.tasks or []
        settled = app.tasks_healthy == healthy and app.tasks_running == healthy and not app.deployments
        if settled and len(tasks) == healthy and (version is None or all(task.version == version for task in tasks)):
            return app
        time.sleep(0.2)
    seen = master_tasks(launcher) if launcher else ""
    raise AssertionError(f"{APP}: {app.tasks_healthy} healthy of {healthy} wanted, deployments {app.deployments}; the master's tasks: {seen}")


def test_app_lifecycle(launcher):
    client = MarathonClient(launcher["url"])
    assert client.ping().strip() in (b"pong", "pong")
    check = MarathonHealthCheck(protocol="HTTP", path="/", interval_seconds=1, grace_period_seconds=10, timeout_seconds=2,
                                max_consecutive_failures=3)
    app = MarathonApp(cmd="exec python3 -m http.server $PORT0", instances=2, cpus=0.1, mem=64, user="nobody", health_checks=[check])

    created = client.create_app(APP, app)
    assert created.id == APP and created.instances == 2
    wait_until(client, 2, launcher=launcher)
    assert [listed.id for listed in client.list_apps()] == [APP]

    client.scale_app(APP, instances=3)
    scaled = wait_until(client, 3, launcher=launcher)
    tasks = client.list_tasks(APP)
    assert len(tasks) == 3
    for task in tasks:
        assert all(result.alive for result in task.health_check_results)
        with urllib.request.urlopen(f"http://{task.host}:{task.ports[0]}/", timeout=10) as response:
            assert response.status == 200

    # A changed command rolls out as a deployment; every instance is then of the new version.
    updated = client.update_app(APP, MarathonApp(cmd="exec python3 -m http.server $PORT0 --bind 127.0.0.1", instances=3, cpus=0.1,
                                                 mem=64, user="nobody", health_checks=[check]), force=True)
    wait_until(client, 3, version=updated["version"], launcher=launcher)
    assert len(client.list_versions(APP)) == 3

    # Rolled back to the scaled version: its command and three instances again.
    client.rollback_app(APP, scaled.version, force=True)
    back = wait_until(client, 3, launcher=launcher)
    assert "--bind" not in back.cmd

    client.restart_app(APP, force=True)
    wait_until(client, 3, launcher=launcher)

    client.delete_app(APP, force=True)
    deadline = time.time() + 60
    while client.list_apps() and time.time() < deadline:
        time.sleep(0.2)
    assert client.list_apps() == []
