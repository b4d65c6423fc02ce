"""RunInfo.xml: every shape the instruments write, and hostile ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.illumina.run_info import RunInfoError, parse_run_info, read_run_info

NOVASEQ = b"""<?xml version="1.0"?>
<RunInfo Version="5">
  <Run Id="230101_A01234_0042_AHXXXXXXX" Number="42">
    <Flowcell>HXXXXXXX</Flowcell>
    <Instrument>A01234</Instrument>
    <Date>1/1/2023 10:17:20 PM</Date>
    <Reads>
      <Read Number="1" NumCycles="151" IsIndexedRead="N"/>
      <Read Number="2" NumCycles="8" IsIndexedRead="Y"/>
      <Read Number="3" NumCycles="8" IsIndexedRead="Y" IsReverseComplement="Y"/>
      <Read Number="4" NumCycles="151" IsIndexedRead="N"/>
    </Reads>
    <FlowcellLayout LaneCount="2" SurfaceCount="2" SwathCount="4" TileCount="88">
      <TileSet TileNamingConvention="FourDigit"><Tiles>
        <Tile>1_1101</Tile><Tile>2_2488</Tile>
      </Tiles></TileSet>
    </FlowcellLayout>
  </Run>
</RunInfo>"""


def test_a_novaseq_run_info_gives_every_field():
    info = parse_run_info(NOVASEQ)
    assert (info.run_id, info.run_number, info.flowcell, info.instrument) == (
        "230101_A01234_0042_AHXXXXXXX",
        42,
        "HXXXXXXX",
        "A01234",
    )
    assert info.date == datetime(2023, 1, 1, 22, 17, 20, tzinfo=UTC)
    assert [(r.cycles, r.is_index, r.is_reverse_complement) for r in info.reads] == [
        (151, False, False),
        (8, True, False),
        (8, True, True),
        (151, False, False),
    ]
    assert info.first_cycle(4) == 168 and info.total_cycles == 318
    assert (info.lane_count, info.surface_count, info.tile_count) == (2, 2, 88)
    assert info.tiles == ("1_1101", "2_2488")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-05-04T12:30:00Z", datetime(2023, 5, 4, 12, 30, tzinfo=UTC)),
        ("230504", datetime(2023, 5, 4, tzinfo=UTC)),
        ("20230504", datetime(2023, 5, 4, tzinfo=UTC)),
    ],
)
def test_dates_in_each_format_instruments_write(text, expected):
    data = NOVASEQ.replace(b"1/1/2023 10:17:20 PM", text.encode())
    assert parse_run_info(data).date == expected


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b'Id="230101_A01234_0042_AHXXXXXXX"', b"", "Run@Id is missing"),
        (b'Id="230101_A01234_0042_AHXXXXXXX"', b'Id="../../etc"', "characters a run id"),
        (b'NumCycles="151"', b'NumCycles="many"', "Read 1@NumCycles"),
        (b"<Flowcell>HXXXXXXX</Flowcell>", b"", "Run/Flowcell is missing"),
        (b'LaneCount="2"', b'LaneCount="0"', "LaneCount is 0"),
        (b"<Tile>2_2488</Tile>", b"<Tile>9_2488</Tile>", "Tile '9_2488'"),
        (b'Number="2" NumCycles', b'Number="3" NumCycles', "Read numbers"),
        (b"</RunInfo>", b"", "not well-formed"),
        (b"1/1/2023 10:17:20 PM", b"yesterday", "Run/Date 'yesterday'"),
    ],
)
def test_a_broken_run_info_is_refused_naming_the_field(old, new, message):
    with pytest.raises(RunInfoError, match=message.replace("(", r"\(")):
        parse_run_info(NOVASEQ.replace(old, new, 1))


def test_an_entity_bomb_is_refused_not_expanded():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8)
        )
        + b"]><RunInfo><Run Id='x'>&i;</Run></RunInfo>"
    )
    with pytest.raises(RunInfoError):
        parse_run_info(bomb)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "RunInfo.xml"
    with path.open("wb") as handle:
        handle.truncate(17 * 1024 * 1024)
    with pytest.raises(RunInfoError, match="at most"):
        read_run_info(path)
