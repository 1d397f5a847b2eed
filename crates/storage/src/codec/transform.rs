//! The reversible transforms of a codec chain, applied in place to the
//! fixed-width values of a block before compression and undone after
//! decompression. Any width works on any bytes (a trailing partial value is
//! left as is), so a block decodes whatever the column's type is now.

use super::spec::CodecStep;

macro_rules! by_width {
    ($w:expr, $data:expr, $f:ident, $op:ident) => {
        match $w {
            1 => $f::<u8, 1>($data, <u8 as Word>::$op),
            2 => $f::<u16, 2>($data, <u16 as Word>::$op),
            4 => $f::<u32, 4>($data, <u32 as Word>::$op),
            _ => $f::<u64, 8>($data, <u64 as Word>::$op),
        }
    };
}

/// Applies `step` with values of `width` bytes (1, 2, 4 or 8).
pub fn apply(step: CodecStep, width: u8, data: &mut [u8]) {
    match step {
        CodecStep::Delta(_) => by_width!(width, data, encode, sub),
        CodecStep::DoubleDelta => {
            by_width!(width, data, encode, sub);
            by_width!(width, data, encode, sub);
        }
        CodecStep::Gorilla(_) => by_width!(width, data, encode, xor),
        CodecStep::T64 => shuffle(width as usize, data),
        _ => {}
    }
}

/// Undoes [`apply`].
pub fn undo(step: CodecStep, width: u8, data: &mut [u8]) {
    match step {
        CodecStep::Delta(_) => by_width!(width, data, decode, add),
        CodecStep::DoubleDelta => {
            by_width!(width, data, decode, add);
            by_width!(width, data, decode, add);
        }
        CodecStep::Gorilla(_) => by_width!(width, data, decode, xor),
        CodecStep::T64 => unshuffle(width as usize, data),
        _ => {}
    }
}

trait Word: Copy {
    fn load(b: &[u8]) -> Self;
    fn store(self, b: &mut [u8]);
    fn sub(self, o: Self) -> Self;
    fn add(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
}

macro_rules! word {
    ($t:ty) => {
        impl Word for $t {
            #[inline(always)]
            fn load(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("chunk of the word's size"))
            }
            #[inline(always)]
            fn store(self, b: &mut [u8]) {
                b.copy_from_slice(&self.to_le_bytes())
            }
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn xor(self, o: Self) -> Self {
                self ^ o
            }
        }
    };
}
word!(u8);
word!(u16);
word!(u32);
word!(u64);

/// Every value but the first becomes `op(value, previous value)`.
fn encode<T: Word, const W: usize>(data: &mut [u8], op: fn(T, T) -> T) {
    walk::<T, W>(data, |v, prev| (op(v, prev), v));
}

/// Every value but the first becomes `op(value, previous decoded value)`.
fn decode<T: Word, const W: usize>(data: &mut [u8], op: fn(T, T) -> T) {
    walk::<T, W>(data, |v, prev| {
        let out = op(v, prev);
        (out, out)
    });
}

/// Rewrites each whole value after the first: `f(value, carry)` gives the
/// value to store and the next carry (the first value is the first carry).
#[inline(always)]
fn walk<T: Word, const W: usize>(data: &mut [u8], mut f: impl FnMut(T, T) -> (T, T)) {
    let n = data.len() / W;
    let mut chunks = data[..n * W].chunks_exact_mut(W);
    let Some(first) = chunks.next() else { return };
    let mut carry = T::load(first);
    for c in chunks {
        let (out, next) = f(T::load(c), carry);
        out.store(c);
        carry = next;
    }
}

/// Byte planes: all values' byte 0, then all byte 1, ...
fn shuffle(w: usize, data: &mut [u8]) {
    let n = data.len() / w.max(1);
    if w <= 1 || n < 2 {
        return;
    }
    let src = data[..n * w].to_vec();
    for (i, v) in src.chunks_exact(w).enumerate() {
        for (j, b) in v.iter().enumerate() {
            data[j * n + i] = *b;
        }
    }
}

fn unshuffle(w: usize, data: &mut [u8]) {
    let n = data.len() / w.max(1);
    if w <= 1 || n < 2 {
        return;
    }
    let src = data[..n * w].to_vec();
    for (j, plane) in src.chunks_exact(n).enumerate() {
        for (i, b) in plane.iter().enumerate() {
            data[i * w + j] = *b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STEPS: [CodecStep; 4] = [
        CodecStep::Delta(None),
        CodecStep::DoubleDelta,
        CodecStep::Gorilla(None),
        CodecStep::T64,
    ];

    proptest! {
        #[test]
        fn every_transform_round_trips(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            step in 0usize..4,
            w in prop::sample::select(vec![1u8, 2, 4, 8]),
        ) {
            let mut buf = data.clone();
            apply(STEPS[step], w, &mut buf);
            undo(STEPS[step], w, &mut buf);
            prop_assert_eq!(buf, data);
        }
    }

    #[test]
    fn delta_turns_a_steady_sequence_into_constants() {
        let mut b: Vec<u8> = (0u64..4)
            .flat_map(|v| (100 + 10 * v).to_le_bytes())
            .collect();
        apply(CodecStep::Delta(None), 8, &mut b);
        let vals: Vec<u64> = b
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(vals, [100, 10, 10, 10]);
        apply(CodecStep::Delta(None), 8, &mut b);
        let vals: Vec<u64> = b
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(vals, [100, u64::MAX - 89, 0, 0]);
    }
}
