from importlib.metadata import version

from mmcompact.analysis import RESULT_PACKAGES, package_versions


def test_package_versions_names_each_package_with_its_installed_version():
    line = package_versions()
    assert line.split(', ')[0] == f"torch {version('torch')}"
    assert [part.split(' ')[0] for part in line.split(', ')] == list(RESULT_PACKAGES)
    assert package_versions(['numpy', 'no-such-package-xyz']) == \
        f"numpy {version('numpy')}, no-such-package-xyz not installed"
