//! Pool tags: 12 bits in every connection id, from a global counter
//! 1..=4095, given back when a pool is dropped. Tags cycle rather than
//! restart at 1, so a dropped pool's ids rarely meet a pool with its tag.

use parking_lot::Mutex;

const TAGS: usize = 4096;

struct Tags {
    /// Pools holding each tag (more than one only when all 4095 are taken).
    users: [u16; TAGS],
    next: usize,
}

static TAG_TABLE: Mutex<Tags> = Mutex::new(Tags {
    users: [0; TAGS],
    next: 1,
});

pub(crate) fn allocate() -> u32 {
    let mut t = TAG_TABLE.lock();
    let start = t.next;
    let mut tag = start;
    loop {
        if t.users[tag] == 0 {
            break;
        }
        tag = if tag + 1 >= TAGS { 1 } else { tag + 1 };
        if tag == start {
            // Every tag is in use: share one (generations still tell ids apart).
            break;
        }
    }
    t.users[tag] = t.users[tag].saturating_add(1);
    t.next = if tag + 1 >= TAGS { 1 } else { tag + 1 };
    tag as u32
}

pub(crate) fn release(tag: u32) {
    let mut t = TAG_TABLE.lock();
    if let Some(u) = t.users.get_mut(tag as usize) {
        *u = u.saturating_sub(1);
    }
}
