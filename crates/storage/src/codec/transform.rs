//! The reversible transforms of a codec chain, applied in place to the
//! fixed-width values of a block before compression and undone after
//! decompression. Any width works on any bytes (a trailing partial value is
//! left as is), so a block decodes whatever the column's type is now.

use super::spec::CodecStep;

macro_rules! by_width {
    ($w:expr, $data:expr, $f:ident) => {
        match $w {
            1 => $f::<u8, 1>($data),
            2 => $f::<u16, 2>($data),
            4 => $f::<u32, 4>($data),
            _ => $f::<u64, 8>($data),
        }
    };
}

/// Applies `step` with values of `width` bytes (1, 2, 4 or 8).
pub fn apply(step: CodecStep, width: u8, data: &mut [u8]) {
    match step {
        CodecStep::Delta(_) => by_width!(width, data, delta_encode),
        CodecStep::DoubleDelta => {
            by_width!(width, data, delta_encode);
            by_width!(width, data, delta_encode);
        }
        CodecStep::Gorilla(_) => by_width!(width, data, xor_encode),
        CodecStep::T64 => shuffle(width as usize, data),
        _ => {}
    }
}

/// Undoes [`apply`].
pub fn undo(step: CodecStep, width: u8, data: &mut [u8]) {
    match step {
        CodecStep::Delta(_) => by_width!(width, data, delta_decode),
        CodecStep::DoubleDelta => {
            by_width!(width, data, delta_decode);
            by_width!(width, data, delta_decode);
        }
        CodecStep::Gorilla(_) => by_width!(width, data, xor_decode),
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

fn delta_encode<T: Word, const W: usize>(data: &mut [u8]) {
    let n = data.len() / W;
    let mut prev: Option<T> = None;
    for c in data[..n * W].chunks_exact_mut(W) {
        let v = T::load(c);
        if let Some(p) = prev {
            v.sub(p).store(c);
        }
        prev = Some(v);
    }
}

fn delta_decode<T: Word, const W: usize>(data: &mut [u8]) {
    let n = data.len() / W;
    let mut acc: Option<T> = None;
    for c in data[..n * W].chunks_exact_mut(W) {
        let v = T::load(c);
        let next = match acc {
            Some(a) => a.add(v),
            None => v,
        };
        next.store(c);
        acc = Some(next);
    }
}

fn xor_encode<T: Word, const W: usize>(data: &mut [u8]) {
    let n = data.len() / W;
    let mut prev: Option<T> = None;
    for c in data[..n * W].chunks_exact_mut(W) {
        let v = T::load(c);
        if let Some(p) = prev {
            v.xor(p).store(c);
        }
        prev = Some(v);
    }
}

fn xor_decode<T: Word, const W: usize>(data: &mut [u8]) {
    let n = data.len() / W;
    let mut acc: Option<T> = None;
    for c in data[..n * W].chunks_exact_mut(W) {
        let v = T::load(c);
        let next = match acc {
            Some(a) => a.xor(v),
            None => v,
        };
        next.store(c);
        acc = Some(next);
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
