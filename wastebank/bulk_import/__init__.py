"""Bulk import of members and prices from the CSV and XLSX lists attendants keep in Excel.

Every row ends up either imported or refused, with its row number as the spreadsheet shows it
(the header is row 1) and every reason found, so a petugas can fix the file and import again:

- members: a missing field, an unknown bank or kelurahan, a bad phone number, a member number
  or card that exists already (or twice in the file), a malformed NIK (16 digits, the structure
  Dukcapil gives it) or one already registered. A NIK is stored only as the ledger's keyed hash
  (:func:`wastebank.ledger.hash_nik`), so it needs the NIK key; it is never written anywhere else,
  the report included.
- prices: a missing field, an unknown bank or category, a price that is not whole Rupiah, a bad
  date, a bank that buys at its induk's prices, an author who is not its attendant, and whatever
  :func:`wastebank.ledger.set_price` refuses (a price that would reprice deposits already made).

Modes: **all-or-nothing** (the default) writes nothing when any row is refused; **valid-only**
writes the rows that pass; **dry run** writes nothing in either mode and says what would happen.
The whole import runs in one database transaction, each row in a savepoint of its own, and every
row goes through the ledger's own functions (``create_member``, ``set_price``): a dry run or a
refused all-or-nothing import is that transaction rolled back, so it reports exactly what a real
import would have done, down to ``set_price``'s refusals. On SQLite the transaction holds the
ledger's write lock for the import's duration (an ingester waits for it, up to its busy timeout).

An XLSX file is a zip archive, and a small one can unpack to gigabytes (a "zip bomb": what one
cost openpyxl is in docs/scaling.md). Before openpyxl opens it, :func:`check_archive` reads
the archive's central directory only (nothing is unpacked) and refuses it with
:class:`ArchiveTooLarge` when it has too many members, unpacks to more than
``max_uncompressed_bytes`` in all, or has a member compressed more than ``max_ratio`` times
(:class:`ImportLimits`; the API's ``WASTEBANK_IMPORTS__*``). Python's zipfile never unpacks more
than a member's declared size (a member that lies fails its CRC), so the declared sizes bound
what openpyxl can be made to read.

CSV files may be UTF-8 (with or without the BOM Excel writes) and comma or semicolon separated
(an Indonesian Excel writes ``;``). Headers are matched loosely: ``no_nasabah``, ``Nomor
Nasabah`` and ``member_no`` are one column, and a bilingual header ``nama / name`` matches too.

The modules: :mod:`.files` (reading a file safely), :mod:`.values` (a cell as a value),
:mod:`.members` and :mod:`.prices` (the two imports), :mod:`.transaction` (the transaction they
run in), :mod:`.report` (what an import did). Their public names are this package's.
"""

from wastebank.bulk_import.files import (
    RATIO_FLOOR,
    ArchiveTooLarge,
    Cell,
    ImportFileError,
    ImportLimits,
    Table,
    check_archive,
    read_table,
)
from wastebank.bulk_import.members import (
    CARD_UID,
    MEMBER_COLUMNS,
    MEMBER_KINDS,
    MEMBER_LABELS,
    MEMBER_NO,
    import_members,
)
from wastebank.bulk_import.prices import PRICE_COLUMNS, import_prices
from wastebank.bulk_import.report import (
    KIND_LABELS,
    REPORT_COLUMNS,
    STATUS_LABELS,
    ImportKind,
    ImportReport,
    Mode,
    Progress,
    RowResult,
    RowStatus,
)
from wastebank.bulk_import.values import nik_problem, normalize_phone, parse_price, parse_when

__all__ = [
    "ArchiveTooLarge",
    "CARD_UID",
    "Cell",
    "ImportFileError",
    "ImportKind",
    "ImportLimits",
    "ImportReport",
    "KIND_LABELS",
    "MEMBER_COLUMNS",
    "MEMBER_KINDS",
    "MEMBER_LABELS",
    "MEMBER_NO",
    "Mode",
    "PRICE_COLUMNS",
    "Progress",
    "RATIO_FLOOR",
    "REPORT_COLUMNS",
    "RowResult",
    "RowStatus",
    "STATUS_LABELS",
    "Table",
    "check_archive",
    "import_members",
    "import_prices",
    "nik_problem",
    "normalize_phone",
    "parse_price",
    "parse_when",
    "read_table",
]
