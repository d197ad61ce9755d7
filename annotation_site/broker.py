"""kombu's filesystem transport, with messages written atomically.

kombu's own `_put` creates the message file under its final name and then writes it; its
`_get` picks up any file with a matching name without taking the writer's lock, so a worker
can read an empty file and stop with "Unrecoverable error: JSONDecodeError" (seen in our
end-to-end test). Here the message is written under a hidden name the reader ignores and then
renamed into place, which is atomic within one folder.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: write a hidden file, then rename it into place."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # `_get` keeps only names whose part after the first dot is "<queue>.msg".
        hidden = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(hidden, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(hidden, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
