//! One decision's credit table: every transport of every active device,
//! credited once.
//!
//! The floor assessment needs each device's in-app, RCS and SMS credit; the
//! ladder needs one transport per step, over every device, and the
//! notifiers theirs. Computed where each is needed that is the same credit
//! several times over. The table credits each (device, transport) at most
//! once, on first use — the assessment stops at a device's first path that
//! holds the thread's floor, and a ladder whose first step qualifies never
//! asks about the rest — and keeps the device's client verdict for its
//! other transports.
//!
//! A cell keeps only what routing reads: the level, or which kind of
//! unusable. The reason itself — with the device, the override, the client
//! it names — is made again from the same inputs by the same [`grade`]
//! when a decision records it ([`CreditTable::reason`]), which a decision
//! whose first step qualifies never does. So the table is small, and rows
//! for the first few devices live inline: building it allocates nothing.

use std::cell::OnceCell;

use crate::assurance::{AssuranceLevel, Transport};
use crate::overrides::OverrideSet;
use crate::reason::SkipReason;
use crate::thread::{Assessment, FloorCause};
use crate::time::Timestamp;

use super::grade::{Grade, Shortfall, grade};
use super::terms::Terms;
use super::{DeviceEvidence, RecipientEvidence};

/// How many devices' rows live inline; a recipient with more spills to
/// the heap.
const INLINE: usize = 8;

/// What crediting one transport of one device found, in brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    /// No evidence for the transport.
    Missing,
    /// An override switches the channel off for the device.
    Disabled,
    /// Fresh evidence says the device cannot be reached this way.
    Unreachable,
    /// Any other reason the evidence does not count: stale, unverified.
    Doubtful,
    /// Reachable at `level`; `short` when a reason says why not higher.
    Reachable { level: AssuranceLevel, short: bool },
}

impl Cell {
    fn of(grade: Grade<'_>) -> Cell {
        match grade {
            Grade::Unusable(Shortfall::EvidenceMissing { .. }) => Cell::Missing,
            Grade::Unusable(Shortfall::OverrideDisabled { .. }) => Cell::Disabled,
            Grade::Unusable(Shortfall::Unreachable { .. }) => Cell::Unreachable,
            Grade::Unusable(_) => Cell::Doubtful,
            Grade::Reachable { level, shortfall } => Cell::Reachable {
                level,
                short: shortfall.is_some(),
            },
        }
    }
}

/// One active device's cells, by transport, each filled on first use.
#[derive(Debug, Clone)]
pub(crate) struct Row<'a> {
    pub device: &'a DeviceEvidence,
    cells: [OnceCell<Cell>; 4],
    /// Whether the device's own client is stale, once a signed report
    /// without a client of its own asked. A flag, not the verdict: the
    /// verdict is worked out again in the rare case it is stale.
    client_stale: OnceCell<bool>,
}

impl<'a> Row<'a> {
    fn new(device: &'a DeviceEvidence) -> Row<'a> {
        Row {
            device,
            cells: Default::default(),
            client_stale: OnceCell::new(),
        }
    }
}

fn transport_slot(t: Transport) -> usize {
    match t {
        Transport::Rcs => 0,
        Transport::InApp => 1,
        Transport::Sms => 2,
        Transport::Push => 3,
    }
}

/// Every active device's row, in the recipient's device order, with what
/// it takes to credit a cell (or make its reason again).
#[derive(Debug)]
pub(crate) struct CreditTable<'a> {
    terms: Terms<'a>,
    overrides: OverrideSet<'a>,
    now: Timestamp,
    /// The rows when the recipient has at most [`INLINE`] devices.
    inline: [Option<Row<'a>>; INLINE],
    /// Otherwise here; empty (and unallocated) when they fit inline.
    spilled: Vec<Row<'a>>,
}

impl<'a> CreditTable<'a> {
    pub(crate) fn new(
        terms: Terms<'a>,
        recipient: &'a RecipientEvidence,
        overrides: OverrideSet<'a>,
        now: Timestamp,
    ) -> CreditTable<'a> {
        let mut table = CreditTable {
            terms,
            overrides,
            now,
            inline: Default::default(),
            spilled: Vec::new(),
        };
        let active = recipient.active_devices();
        if recipient.devices.len() <= INLINE {
            for (slot, d) in table.inline.iter_mut().zip(active) {
                *slot = Some(Row::new(d));
            }
        } else {
            table.spilled = active.map(Row::new).collect();
        }
        table
    }

    pub(crate) fn rows(&self) -> impl Iterator<Item = &Row<'a>> + Clone {
        self.inline.iter().flatten().chain(&self.spilled)
    }

    /// The grade of one transport of one device, in full.
    fn grade(&self, row: &Row<'a>, transport: Transport) -> Grade<'a> {
        let terms = &self.terms;
        let device = row.device;
        grade(
            terms,
            device,
            transport,
            self.overrides.iter(),
            || {
                let stale = || terms.client_staleness(device.client.as_ref());
                if *row.client_stale.get_or_init(|| stale().is_some()) {
                    stale()
                } else {
                    None
                }
            },
            self.now,
        )
    }

    /// One cell, credited now if it was not yet.
    pub(crate) fn cell(&self, row: &Row<'a>, transport: Transport) -> Cell {
        match row.cells.get(transport_slot(transport)) {
            Some(cell) => *cell.get_or_init(|| Cell::of(self.grade(row, transport))),
            // INVARIANT: `transport_slot` is below the number of cells.
            None => Cell::of(self.grade(row, transport)),
        }
    }

    /// Credits `transport` of every device now: the transport the first
    /// ladder step reads, so that the floor assessment, which comes first,
    /// can settle on it rather than credit another.
    pub(crate) fn credit_all(&self, transport: Transport) {
        for row in self.rows() {
            self.cell(row, transport);
        }
    }

    /// The borrowed reason of one cell: the credit made again, in full.
    pub(crate) fn shortfall(&self, row: &Row<'a>, transport: Transport) -> Option<Shortfall<'a>> {
        match self.grade(row, transport) {
            Grade::Unusable(r) => Some(r),
            Grade::Reachable { shortfall, .. } => shortfall,
        }
    }

    /// The owned reason of one cell, for a decision to record. A cell
    /// whose credit has no reason (reachable at its best) gives "no
    /// evidence", which no caller asks for.
    pub(crate) fn reason(&self, row: &Row<'a>, transport: Transport) -> SkipReason {
        self.shortfall(row, transport)
            .unwrap_or(Shortfall::EvidenceMissing { transport })
            .to_reason()
    }

    /// A device's best level over in-app, RCS and SMS — the same as
    /// [`CreditTable::best`]'s — or `cap` as soon as one path reaches it, so
    /// the rest need no credit.
    fn best_to(&self, row: &Row<'a>, cap: AssuranceLevel) -> AssuranceLevel {
        const PATHS: [Transport; 3] = [Transport::InApp, Transport::Rcs, Transport::Sms];
        let reaches = |c: &Cell| matches!(c, Cell::Reachable { level, .. } if *level >= cap);
        // A path already credited that reaches `cap` settles it.
        if PATHS
            .into_iter()
            .filter_map(|t| row.cells.get(transport_slot(t)).and_then(OnceCell::get))
            .any(reaches)
        {
            return cap;
        }
        let mut best = AssuranceLevel::None;
        for t in PATHS {
            match self.cell(row, t) {
                c if reaches(&c) => return cap,
                Cell::Reachable { level, .. } => best = best.max(level),
                Cell::Missing | Cell::Disabled | Cell::Unreachable | Cell::Doubtful => {}
            }
        }
        best
    }

    /// A device's best level and why it is no higher (`None` at the top),
    /// from its full grades: what a floor cause records.
    pub(crate) fn best(&self, row: &Row<'a>) -> (AssuranceLevel, Option<Shortfall<'a>>) {
        let mut best = AssuranceLevel::None;
        let mut best_shortfall: Option<Shortfall<'a>> = None;
        let mut reached = false;
        let mut unusable: Option<Shortfall<'a>> = None;
        for t in [Transport::InApp, Transport::Rcs, Transport::Sms] {
            match self.grade(row, t) {
                Grade::Reachable { level, shortfall } => {
                    if !reached || level > best {
                        best = level;
                        best_shortfall = shortfall;
                        reached = true;
                    }
                }
                Grade::Unusable(Shortfall::EvidenceMissing { .. }) => {}
                Grade::Unusable(r) => {
                    unusable.get_or_insert(r);
                }
            }
        }
        if best == AssuranceLevel::E2eeAttested {
            return (best, None);
        }
        // Prefer the shortfall of the path that reached `best`; then the
        // first informative reason a path was unusable; then plain "no
        // evidence".
        let why = best_shortfall
            .or(unusable)
            .unwrap_or(Shortfall::EvidenceMissing {
                transport: Transport::InApp,
            });
        (best, Some(why))
    }

    /// The level the recipient's devices verifiably support now — the
    /// minimum over active devices of each one's best — or `cap` if that
    /// is higher; `None` without an active device. A thread's floor can only
    /// come down, so a decision asks no more than whether its devices hold
    /// the floor, and where not, how far below it they are.
    pub(crate) fn floor_level(&self, cap: AssuranceLevel) -> Option<AssuranceLevel> {
        self.rows().map(|r| self.best_to(r, cap)).min()
    }

    /// The floor causes at `level`: every device whose best is `level`,
    /// with why it is no higher. Owned: a drop records them.
    pub(crate) fn causes_at(&self, level: Option<AssuranceLevel>) -> Vec<FloorCause> {
        let Some(level) = level else {
            return vec![FloorCause::NoActiveDevice];
        };
        self.rows()
            .filter_map(|r| match self.best(r) {
                (l, Some(why)) if l == level => Some(FloorCause::Device {
                    device: r.device.id.clone(),
                    reason: why.to_reason(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The whole assessment, owned, for [`crate::thread::assess`]: every
    /// device's best, in full, once.
    pub(crate) fn assessment(&self) -> Assessment {
        let bests: Vec<_> = self.rows().map(|r| (r, self.best(r))).collect();
        let Some(level) = bests.iter().map(|(_, (l, _))| *l).min() else {
            return Assessment {
                level: AssuranceLevel::None,
                causes: vec![FloorCause::NoActiveDevice],
            };
        };
        let causes = bests
            .into_iter()
            .filter(|(_, (l, _))| *l == level)
            .filter_map(|(r, (_, why))| {
                why.map(|why| FloorCause::Device {
                    device: r.device.id.clone(),
                    reason: why.to_reason(),
                })
            })
            .collect();
        Assessment { level, causes }
    }
}

/// One device's best level and why it is no higher, for
/// [`super::device_best`].
pub(crate) fn device_best<'a>(
    terms: Terms<'a>,
    device: &'a DeviceEvidence,
    overrides: OverrideSet<'a>,
    now: Timestamp,
) -> (AssuranceLevel, Option<Shortfall<'a>>) {
    let table = CreditTable {
        terms,
        overrides,
        now,
        inline: Default::default(),
        spilled: Vec::new(),
    };
    table.best(&Row::new(device))
}
