"""A slide is its file, not its place: segment parameters compare the files they name by what identifies the file
(a repository's id, size and digest where there is one), so stores stay current when files move."""

import shutil

from histomics_label.core.pipeline import PipelineConfig, same_segmentation


def params(slide, store, **fields):
    config = PipelineConfig(slide=str(slide), store=str(store), magnification=5, radius=10, **fields)
    return config.segment_params(config.slide_reader())


def test_a_moved_file_is_the_same_file_only_where_a_repository_names_it(cmu_svs, tmp_path):
    moved = tmp_path / 'elsewhere' / 'slide.svs'
    moved.parent.mkdir()
    shutil.copy(cmu_svs, moved)  # another path and modification time, the same bytes
    size = cmu_svs.stat().st_size
    # the CLI names local files by path, size and time: a copy elsewhere is segmented again, as before
    assert not same_segmentation(params(cmu_svs, tmp_path / 's.h5'), params(moved, tmp_path / 's.h5'))
    girder = {'file': 'f1', 'size': size}
    here, there = (params(path, tmp_path / 's.h5', slide_file=girder) for path in (cmu_svs, moved))
    assert here['slide'] == girder and same_segmentation(here, there)
    # a store made when the slide was named by its path stays current for the same file (same size)
    old = params(cmu_svs, tmp_path / 's.h5')
    assert old['slide']['path'] and same_segmentation(old, there)
    assert not same_segmentation(old, params(moved, tmp_path / 's.h5', slide_file={'file': 'f1', 'size': size + 1}))
    # another Girder file is another slide, unless both digests say the bytes are the same
    assert not same_segmentation(here, params(moved, tmp_path / 's.h5', slide_file={'file': 'f2', 'size': size}))
    digested = [params(cmu_svs, tmp_path / 's.h5', slide_file={'file': f, 'size': size, 'sha512': 'ab' * 64})
                for f in ('f1', 'f2')]
    assert same_segmentation(*digested)
    assert not same_segmentation(digested[0], params(cmu_svs, tmp_path / 's.h5', slide_file={
        'file': 'f1', 'size': size, 'sha512': 'cd' * 64}))
    # every other parameter still counts
    assert not same_segmentation(there, params(moved, tmp_path / 's.h5', slide_file=girder, compactness=20))
