//! Where a one-time code went, shown so the recipient recognises it and
//! nobody else learns it: the last two digits of a phone number
//! (`•••• 42`), the first letter of each side of an e-mail address and its
//! top-level domain (`j•••@e•••.com`); a no-break space keeps the phone's
//! hint on one line. The full address never reaches a
//! page.

/// A phone number as the code page shows it.
pub(super) fn phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits.iter().rev().take(2).rev().collect();
    format!("••••\u{a0}{tail}")
}

/// An e-mail address as the code page shows it.
pub(super) fn email(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return "•••".to_string();
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let tld = domain
        .rsplit_once('.')
        .map(|(_, tld)| format!(".{tld}"))
        .unwrap_or_default();
    format!("{}•••@{}•••{tld}", first(local), first(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_to_a_hint() {
        assert_eq!(phone("+15550142"), "••••\u{a0}42");
        assert_eq!(email("jane.doe@example.com"), "j•••@e•••.com");
        assert_eq!(email("ünï@bücher.example.de"), "ü•••@b•••.de");
        assert_eq!(email("nobody"), "•••");
        for masked in [phone("+15550142"), email("jane.doe@example.com")] {
            assert!(!masked.contains("5550") && !masked.contains("jane"));
        }
    }
}
