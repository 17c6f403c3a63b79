//! Exact rationals for rates: no floats in any computed term.

use super::{Result, ScoreError};

/// `num / den`, always reduced, `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Ratio {
    pub fn new(num: i128, den: i128) -> Result<Ratio> {
        if den == 0 {
            return Err(ScoreError::Overflow("division by zero"));
        }
        let (num, den) = if den < 0 {
            (
                num.checked_neg().ok_or(ScoreError::Overflow("ratio"))?,
                den.checked_neg().ok_or(ScoreError::Overflow("ratio"))?,
            )
        } else {
            (num, den)
        };
        let g = gcd(num, den).max(1);
        Ok(Ratio {
            num: num / g,
            den: den / g,
        })
    }

    pub fn int(v: i128) -> Ratio {
        Ratio { num: v, den: 1 }
    }

    pub fn num(&self) -> i128 {
        self.num
    }

    pub fn den(&self) -> i128 {
        self.den
    }

    pub fn checked_add(self, o: Ratio) -> Result<Ratio> {
        let of = || ScoreError::Overflow("ratio");
        let g = gcd(self.den, o.den).max(1);
        let l = self.den / g;
        let num = self
            .num
            .checked_mul(o.den / g)
            .ok_or_else(of)?
            .checked_add(o.num.checked_mul(l).ok_or_else(of)?)
            .ok_or_else(of)?;
        Ratio::new(num, l.checked_mul(o.den).ok_or_else(of)?)
    }

    pub fn checked_sub(self, o: Ratio) -> Result<Ratio> {
        self.checked_add(Ratio {
            num: o.num.checked_neg().ok_or(ScoreError::Overflow("ratio"))?,
            den: o.den,
        })
    }

    pub fn checked_mul(self, o: Ratio) -> Result<Ratio> {
        let of = || ScoreError::Overflow("ratio");
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        let num = (self.num / g1).checked_mul(o.num / g2).ok_or_else(of)?;
        let den = (self.den / g2).checked_mul(o.den / g1).ok_or_else(of)?;
        Ratio::new(num, den)
    }

    pub fn checked_div(self, o: Ratio) -> Result<Ratio> {
        if o.num == 0 {
            return Err(ScoreError::Overflow("division by zero"));
        }
        self.checked_mul(Ratio::new(o.den, o.num)?)
    }

    /// The value in hundredths, rounded half away from zero (for display only).
    pub fn round_hundredths(&self) -> Result<i64> {
        let of = || ScoreError::Overflow("rounding");
        let scaled = self
            .num
            .checked_abs()
            .ok_or_else(of)?
            .checked_mul(200)
            .ok_or_else(of)?;
        let q = scaled.checked_add(self.den).ok_or_else(of)?
            / self.den.checked_mul(2).ok_or_else(of)?;
        let q = if self.num < 0 { -q } else { q };
        i64::try_from(q).map_err(|_| of())
    }

    /// `self >= o`, exactly.
    pub fn ge(&self, o: &Ratio) -> Result<bool> {
        Ok(self.checked_sub(*o)?.num >= 0)
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(Ratio::new(1, 200).unwrap().round_hundredths().unwrap(), 1);
        assert_eq!(Ratio::new(-1, 200).unwrap().round_hundredths().unwrap(), -1);
        assert_eq!(Ratio::new(1, 300).unwrap().round_hundredths().unwrap(), 0);
        assert_eq!(
            Ratio::new(223, 2).unwrap().round_hundredths().unwrap(),
            11150
        );
        assert_eq!(Ratio::new(2, 3).unwrap().round_hundredths().unwrap(), 67);
        assert_eq!(Ratio::new(-2, 3).unwrap().round_hundredths().unwrap(), -67);
    }

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        let a = Ratio::new(1, 3)
            .unwrap()
            .checked_add(Ratio::new(1, 6).unwrap())
            .unwrap();
        assert_eq!((a.num(), a.den()), (1, 2));
        assert_eq!(a.to_string(), "1/2");
        assert!(Ratio::int(0).checked_div(Ratio::int(0)).is_err());
        assert!(Ratio::int(i128::MAX).checked_add(Ratio::int(1)).is_err());
    }
}
