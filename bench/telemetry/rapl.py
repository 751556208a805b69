"""CPU package energy from Linux RAPL (/sys/class/powercap), where the machine lets us read it."""

from __future__ import annotations

from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


def read_packages_uj(root: Path = POWERCAP) -> tuple[dict[str, int] | None, str | None]:
    """{zone: energy in microjoules} of each CPU package, or (None, why not)."""
    if not root.is_dir():
        return None, f"{root} does not exist (not Linux, or no RAPL driver)"
    zones = {}
    for zone in sorted(root.glob("intel-rapl:*")):
        name_file = zone / "name"
        if ":" in zone.name.removeprefix("intel-rapl:") or not name_file.is_file():
            continue  # sub-zones (core, uncore, dram) are inside a package: counting them would double count
        try:
            if name_file.read_text().strip().startswith("package"):
                zones[zone.name] = int((zone / "energy_uj").read_text())
        except PermissionError:
            return None, f"{zone / 'energy_uj'} is not readable (root only since Linux 5.10)"
        except (OSError, ValueError) as exc:
            return None, f"{zone / 'energy_uj'}: {exc}"
    if not zones:
        return None, f"no RAPL package zone under {root}"
    return zones, None


def package_energy_j(before: dict[str, int], after: dict[str, int], root: Path = POWERCAP) -> float:
    """Joules between two readings; a counter that wrapped is corrected with max_energy_range_uj."""
    total_uj = 0
    for zone, start in before.items():
        delta = after[zone] - start
        if delta < 0:
            delta += int((root / zone / "max_energy_range_uj").read_text())
        total_uj += delta
    return total_uj / 1e6
