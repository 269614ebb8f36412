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
``np:``    name reading + birth year                        pinyin, traditional, homophones
``bd:``    birth date + sex                                 name typos, newborns
=========  ==============================================  ===================================
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
    dates = sorted({d for d in (f.birth, f.id_birth) if d})
    if f.name is not None and not f.name.temp:
        for reading in f.name.readings[:MAX_NAME_READINGS]:
            out += [f"np:{reading}|{year}" for year in sorted({d[:4] for d in dates})] or [f"np:{reading}|"]
        if f.name.han is None and dates:
            out.append(f"np:{f.name.key}|")  # Latin-script names are rare enough to block on alone
    sexes = sorted({s for s in (f.sex, f.id_sex) if s}) or ["female", "male"]
    out += [f"bd:{d}|{s}" for d in dates for s in sexes]
    return list(dict.fromkeys(out))


def hashes(f: Features) -> list[int]:
    return sorted({key_hash(k) for k in keys(f)})


def lock_keys(f: Features) -> list[int]:
    """Advisory-lock keys for linking ``f``: its blocking keys and its own record, sorted."""
    return sorted({*f.hashes, key_hash(f"src:{f.patient_id}")})


def golden_lock(golden_id: str) -> int:
    return key_hash(f"golden:{golden_id}")
