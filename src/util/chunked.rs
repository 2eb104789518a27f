//! A list that grows by fixed-size chunks: pushing never moves what is
//! already stored, so a list of a million rows costs its rows plus at most
//! one chunk of spare room, where a `Vec` that doubles may hold twice its
//! rows and, while it moves them, three times.

/// Rows per chunk.
const CHUNK: usize = 4096;

#[derive(Debug, Clone)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new() }
    }
}

impl<T> Chunked<T> {
    pub fn push(&mut self, row: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(row),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(row);
                self.chunks.push(chunk);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

impl<T> Extend<T> for Chunked<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, rows: I) {
        rows.into_iter().for_each(|r| self.push(r));
    }
}

impl<T> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(rows: I) -> Self {
        let mut out = Chunked::default();
        out.extend(rows);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_in_the_order_pushed_across_chunks() {
        let n = 2 * CHUNK + 5;
        let list: Chunked<usize> = (0..n).collect();
        assert_eq!(list.len(), n);
        assert_eq!(list.chunks.len(), 3);
        assert!(list.iter().copied().eq(0..n));
        assert!(Chunked::<u8>::default().is_empty());
    }
}
