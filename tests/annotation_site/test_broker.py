"""The embedded broker writes each message atomically, so a worker never reads half of one."""

import os
from queue import Empty

import pytest
from kombu import Connection

from annotation_site import broker


@pytest.fixture
def channel(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    with Connection(
        "filesystem://", transport="annotation_site.broker:Transport", transport_options=options
    ) as connection:
        yield connection.default_channel


class BrokerTests:
    def test_a_message_being_written_is_invisible_to_the_reader(self, channel, monkeypatch):
        rename = os.replace
        checked = []

        def reader_looks_mid_write(src, dst):
            # the whole payload is on disk under its hidden name, not yet under its own
            with pytest.raises(Empty):
                channel._get("jobs")
            checked.append(os.path.basename(src))
            rename(src, dst)

        monkeypatch.setattr(broker.os, "replace", reader_looks_mid_write)
        channel._put("jobs", {"body": "aggregate clip 7"})
        assert checked and checked[0].startswith(".")
        assert channel._get("jobs") == {"body": "aggregate clip 7"}
