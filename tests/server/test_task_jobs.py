"""A worker task's Girder job made in a queue's thread, where girder_worker's plugin cannot find the API URL (no
request): the job reports to the URL of girder_worker's setting, else the one its round job recorded from the
request that asked for it, else the latest task's; with none of them it is refused with what to set, and no job is
left behind."""

import pytest

pytestmark = pytest.mark.plugin('histomics_label')


@pytest.fixture
def round_job(server, admin):
    from girder_jobs.models.job import Job

    def make(**kwargs) -> dict:
        return Job().createLocalJob(module='histomics_label.jobs.rounds', function='run_job', title='a round',
                                    type='histomics_label.train', user=admin, kwargs={'project': 'p', **kwargs})
    return make


def _make_task_job(parent: dict, admin: dict) -> dict:
    from histomics_label.jobs import remote

    return remote.create_task_job(parent, 'a round (on a worker)', remote.ROUND_WORKER_JOB_TYPE, admin)


def test_the_url_comes_from_the_setting_the_round_job_or_the_latest_task(server, admin, round_job):
    from girder.models.setting import Setting
    from girder.models.token import Token
    from girder_jobs.models.job import Job

    from histomics_label.core.errors import HistomicsLabelError

    jobs_before = Job().collection.count_documents({})
    with pytest.raises(HistomicsLabelError, match=r'set the worker plugin\'s API URL \(worker.api_url\)'):
        _make_task_job(round_job(), admin)
    assert Job().collection.count_documents({}) == jobs_before + 1  # the round job only

    recorded = _make_task_job(round_job(apiUrl='http://girder.example:8080/api/v1'), admin)
    spec = recorded['jobInfoSpec']
    assert spec['url'] == f'http://girder.example:8080/api/v1/job/{recorded["_id"]}'
    assert spec['method'] == 'PUT' and spec['reference'] == str(recorded['_id'])
    token = Token().load(spec['headers']['Girder-Token'], force=True, objectId=False)
    assert token['scope'] == [f'jobs.job_{recorded["_id"]}']  # it may update this job, nothing else
    stored = Job().load(recorded['_id'], force=True)
    assert stored['handler'] == 'celery_handler' and stored['status'] == 0 and stored['jobInfoSpec'] == spec
    assert stored['parentId'] is not None and stored['userId'] == admin['_id']

    latest = _make_task_job(round_job(), admin)  # nothing recorded: the latest task's URL
    assert latest['jobInfoSpec']['url'] == f'http://girder.example:8080/api/v1/job/{latest["_id"]}'

    Setting().set('worker.api_url', 'http://workers-see-me:9000/api/v1')
    try:
        preferred = _make_task_job(round_job(apiUrl='http://girder.example:8080/api/v1'), admin)
    finally:
        Setting().unset('worker.api_url')
    assert preferred['jobInfoSpec']['url'] == f'http://workers-see-me:9000/api/v1/job/{preferred["_id"]}'
