"""Blocking keys: which stored records are worth scoring against a new one.

A record's keys go into ``mpi_block (key, rid)`` as signed 64-bit hashes (compact, one btree).
The same keys serialise concurrent linking: the linker takes a transaction-level advisory lock on
each key (sorted, so two linkers never wait on each other in opposite orders).

=========  ==============================================  ===================================
prefix     value                                           catches
=========  ==============================================  ===================================
``id:``    resident ID (18 characters; malformed as typed)  same ID
``ph:``    phone, E.164                                     same phone (also children, elders)
``cc:``    citizen card                                     same card
``vc:``    virtual card token                               same card
``li:``    institution MRN / visit card (system|value)      duplicate registrations
``oi:``    other identifier systems (system|value)          insurance, passports ...
``ad:``    an address without Chinese structure             foreign-style addresses
``an:``    the numbers of a Latin-script address            house number + postcode, words typed
                                                            differently
``np:``    name reading + birth year                        pinyin, traditional, homophones
``nl:``    one part of a Latin-script name (family, given)  typos in the other part, reversed
                                                            order, a wrong birth date
``bd:``    birth date + sex                                 name typos, newborns
=========  ==============================================  ===================================

Keys shared by very many records say little (a surname like ``smith``, the address of a nursing
home, a birth date of 1 January): the linker skips a key with more than
``blocking.max_per_key`` records (see :func:`phix.mpi.store.candidates`), as Splink and HAPI MDM
avoid blocking rules that make too many pairs; the record's other keys still find its matches.
"""

from __future__ import annotations

import hashlib

from phix.mpi.features import Features

MAX_NAME_READINGS = 2


def key_hash(key: str) -> int:
    """Signed 64-bit hash of a key (also the advisory-lock key)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def keys(f: Features) -> list[str]:
    out: list[str] = []
    if f.id18:
        out.append(f"id:{f.id18}")
    if f.id_raw:
        out.append(f"id:{f.id_raw}")
    out += [f"ph:{p}" for p in f.phones]
    out += [f"cc:{c}" for c in f.cards]
    out += [f"vc:{c}" for c in f.vcards]
    out += [f"li:{i.system}|{i.value}" for i in f.local_ids()]
    out += [f"oi:{system}|{value}" for system, value in f.others]
    if f.address is not None and not f.address[1] and f.address[3]:
        out.append(f"ad:{f.address[3]}")  # an address without Chinese structure: the whole text
        if " " in f.address[3]:  # Latin-script words: also the numbers (house number, postcode)
            numbers = sorted({w for w in f.address[3].split(" ") if w.isdigit()})
            if numbers:
                out.append(f"an:{'|'.join(numbers)}")
    dates = sorted({d for d in (f.birth, f.id_birth) if d})
    if f.name is not None and not f.name.temp:
        for reading in f.name.readings[:MAX_NAME_READINGS]:
            out += [f"np:{reading}|{year}" for year in sorted({d[:4] for d in dates})] or [f"np:{reading}|"]
            if f.name.han is not None:  # a mistyped year: the name with the month and day of birth
                out += [f"nd:{reading}|{day}" for day in sorted({d[5:] for d in dates})]
        if f.name.han is None and dates:
            out.append(f"np:{f.name.key}|")  # Latin-script names are rare enough to block on alone
        if f.name.han is None:
            out += [f"nl:{part}" for part in sorted({f.name.family, f.name.given}) if len(part) >= 2]
    sexes = sorted({s for s in (f.sex, f.id_sex) if s}) or ["female", "male"]
    out += [f"bd:{d}|{s}" for d in dates for s in sexes]
    return list(dict.fromkeys(out))


# Keys that find typo-ridden duplicates but bring mostly non-matching pairs: left out of the
# pairs EM learns the m-probabilities from (they would pull its "match" class towards pairs that
# merely share a name part or a house number).
BROAD = ("nl:", "an:")


def hashes(f: Features, broad: bool = True) -> list[int]:
    return sorted({key_hash(k) for k in keys(f) if broad or not k.startswith(BROAD)})


def lock_keys(f: Features) -> list[int]:
    """Advisory-lock keys for linking ``f``: its blocking keys and its own record, sorted."""
    return sorted({*f.hashes, key_hash(f"src:{f.patient_id}")})


def golden_lock(golden_id: str) -> int:
    return key_hash(f"golden:{golden_id}")
