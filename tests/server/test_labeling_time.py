"""Labeling time, the learning curve's other axis: each labeler's writes, gaps over the idle limit cut short."""

import datetime

from bson.objectid import ObjectId

from histomics_label.models.label import IDLE_GAP, LabelEvent


def test_labeling_minutes_count_each_labelers_gaps_up_to_the_idle_limit(db):
    project, first, second = ObjectId(), ObjectId(), ObjectId()
    start = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)

    def write(labeler, seconds, segments=1):
        LabelEvent().collection.insert_many([
            {'project': project, 'labeler': labeler, 'batch': f'{labeler}-{seconds}', 'segment': s,
             'time': start + datetime.timedelta(seconds=seconds), 'action': 'set'} for s in range(segments)])

    for seconds in (0, 30, 90):  # 30 s and 60 s of labeling
        write(first, seconds, segments=3)  # a batch of three labels written at once is one write
    write(first, 90 + 600)  # a ten-minute break: counts as the idle limit
    write(second, 15)
    write(second, 35)  # another labeler at the same time: 20 s more
    LabelEvent().collection.insert_one({'project': ObjectId(), 'labeler': first, 'batch': 'other', 'segment': 1,
                                        'time': start + datetime.timedelta(seconds=45), 'action': 'set'})
    expected = (30 + 60 + IDLE_GAP.total_seconds() + 20) / 60
    assert abs(LabelEvent().labeling_minutes(project, start + datetime.timedelta(hours=1)) - expected) < 1e-9
    # up to a moment: only the writes before it
    assert abs(LabelEvent().labeling_minutes(project, start + datetime.timedelta(seconds=60)) - (30 + 20) / 60) < 1e-9
